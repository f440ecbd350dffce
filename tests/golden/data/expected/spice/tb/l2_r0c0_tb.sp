* amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
* Self-contained testbench for tile l2_r0c0: DAC sources VIN_i drive in_i (0..0.2 V),
* the verifier sets them with 'alter' and reads V(out_j) after each operating point.
.options klu reltol=1e-06 abstol=1e-12
* amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
* Crossbar tile l2_r0c0: 2 word lines x 1 differential outputs
* (2 bit lines). I_j = sum_i V(wl_i) * (1/RP_i_j - 1/RN_i_j).
* Each bit line is held at virtual ground by an ideal TIA (0 V sense source + CCVS, gain -Rf),
* out_j = outp_j - outn_j = -Rf * I_j with Rf = 32938.07642 ohm (ADC full scale 3.036e-05 A).
* Ideal wires.
.subckt xbar_l2_r0c0
+ wl_0 wl_1 out_0
RP_0_0 wl_0 blp_0 18587.36059
RN_0_0 wl_0 bln_0 1000000
RP_1_0 wl_1 blp_0 1000000
RN_1_0 wl_1 bln_0 10000
VSP_0 blp_0 0 DC 0
VSN_0 bln_0 0 DC 0
HTP_0 outp_0 0 VSP_0 -32938.07642
HTN_0 outn_0 0 VSN_0 -32938.07642
EDIF_0 out_0 0 outp_0 outn_0 1
.ends xbar_l2_r0c0

VIN_0 in_0 0 DC 0
VIN_1 in_1 0 DC 0
Xl2_r0c0
+ in_0 in_1 out_0
+ xbar_l2_r0c0
.op
.end
