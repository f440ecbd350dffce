* amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
* Crossbar tile l1_r0c0: 3 word lines x 2 differential outputs
* (4 bit lines). I_j = sum_i V(wl_i) * (1/RP_i_j - 1/RN_i_j).
* Each bit line is held at virtual ground by an ideal TIA (0 V sense source + CCVS, gain -Rf),
* out_j = outp_j - outn_j = -Rf * I_j with Rf = 28058.36139 ohm (ADC full scale 3.564e-05 A).
* Ideal wires.
.subckt xbar_l1_r0c0
+ wl_0 wl_1 wl_2 out_0 out_1
RP_0_0 wl_0 blp_0 10000
RN_0_0 wl_0 bln_0 1000000
RP_0_1 wl_0 blp_1 1000000
RN_0_1 wl_0 bln_1 1000000
RP_1_0 wl_1 blp_0 1000000
RN_1_0 wl_1 bln_0 18587.36059
RP_1_1 wl_1 blp_1 13586.95652
RN_1_1 wl_1 bln_1 1000000
RP_2_0 wl_2 blp_0 36496.35036
RN_2_0 wl_2 bln_0 1000000
RP_2_1 wl_2 blp_1 1000000
RN_2_1 wl_2 bln_1 10000
VSP_0 blp_0 0 DC 0
VSN_0 bln_0 0 DC 0
HTP_0 outp_0 0 VSP_0 -28058.36139
HTN_0 outn_0 0 VSN_0 -28058.36139
EDIF_0 out_0 0 outp_0 outn_0 1
VSP_1 blp_1 0 DC 0
VSN_1 bln_1 0 DC 0
HTP_1 outp_1 0 VSP_1 -28058.36139
HTN_1 outn_1 0 VSN_1 -28058.36139
EDIF_1 out_1 0 outp_1 outn_1 1
.ends xbar_l1_r0c0
