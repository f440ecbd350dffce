* amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
* Testbench for tile l2_r0c0: DAC sources VIN_i drive in_i (-0.2..0.2 V),
* the verifier sets them and reads V(out_j) after each operating point. The tile's subckt is included
* from spice/tiles/ (the verifier inlines it, so each simulation task is self-contained).
.options klu reltol=1e-06 abstol=1e-12
.include ../tiles/l2_r0c0.sp
VIN_0 in_0 0 DC 0
VIN_1 in_1 0 DC 0
Xl2_r0c0
+ in_0 in_1 out_0
+ xbar_l2_r0c0
.op
.end
