* amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
* Top level: every crossbar tile, with one DAC source per layer input row (shared by the tiles of
* that layer that read the row). Digital accumulation between layers is in the RTL, not here.
* Every 8 outputs of a tile share an ADC through a readout (spice/readout.sp, amsc_ro8).
* X<tile>_ro<g> holds outputs g*8.. and presents them on <tile>_adp_<g> / <tile>_adn_<g>, one per
* conversion slot. Its clocks ro_* come from the RTL's schedule and are held low here (switches open).
.options klu reltol=1e-06 abstol=1e-12
.include readout.sp
.include tiles/l1_r0c0.sp
.include tiles/l2_r0c0.sp
Vl1_x_0 l1_x_0 0 DC 0
Vl1_x_1 l1_x_1 0 DC 0
Vl1_x_2 l1_x_2 0 DC 0
Vl2_x_0 l2_x_0 0 DC 0
Vl2_x_1 l2_x_1 0 DC 0
Vro_smp ro_smp 0 DC 0
Vro_rst ro_rst 0 DC 0
Vro_sel_0 ro_sel_0 0 DC 0
Vro_sel_1 ro_sel_1 0 DC 0
Vro_sel_2 ro_sel_2 0 DC 0
Vro_sel_3 ro_sel_3 0 DC 0
Vro_sel_4 ro_sel_4 0 DC 0
Vro_sel_5 ro_sel_5 0 DC 0
Vro_sel_6 ro_sel_6 0 DC 0
Vro_sel_7 ro_sel_7 0 DC 0
Xl1_r0c0
+ l1_x_0 l1_x_1 l1_x_2 l1_r0c0_out_0 l1_r0c0_out_1
+ xbar_l1_r0c0
Xl1_r0c0_ro0
+ l1_r0c0_out_0 l1_r0c0_out_1 0 0 0 0 0 0
+ ro_smp ro_rst ro_sel_0 ro_sel_1 ro_sel_2 ro_sel_3 ro_sel_4 ro_sel_5
+ ro_sel_6 ro_sel_7 l1_r0c0_adp_0 l1_r0c0_adn_0
+ amsc_ro8
Xl2_r0c0
+ l2_x_0 l2_x_1 l2_r0c0_out_0
+ xbar_l2_r0c0
Xl2_r0c0_ro0
+ l2_r0c0_out_0 0 0 0 0 0 0 0
+ ro_smp ro_rst ro_sel_0 ro_sel_1 ro_sel_2 ro_sel_3 ro_sel_4 ro_sel_5
+ ro_sel_6 ro_sel_7 l2_r0c0_adp_0 l2_r0c0_adn_0
+ amsc_ro8
.op
.end
