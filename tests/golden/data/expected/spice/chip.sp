* amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
* Top level: every crossbar tile, with one DAC source per layer input row (shared by the tiles of
* that layer that read the row). Digital accumulation between layers is in the RTL, not here.
.options klu reltol=1e-06 abstol=1e-12
.include tiles/l1_r0c0.sp
.include tiles/l2_r0c0.sp
Vl1_x_0 l1_x_0 0 DC 0
Vl1_x_1 l1_x_1 0 DC 0
Vl1_x_2 l1_x_2 0 DC 0
Vl2_x_0 l2_x_0 0 DC 0
Vl2_x_1 l2_x_1 0 DC 0
Xl1_r0c0
+ l1_x_0 l1_x_1 l1_x_2 l1_r0c0_out_0 l1_r0c0_out_1
+ xbar_l1_r0c0
Xl2_r0c0
+ l2_x_0 l2_x_1 l2_r0c0_out_0
+ xbar_l2_r0c0
.op
.end
