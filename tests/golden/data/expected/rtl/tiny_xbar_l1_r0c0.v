// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Analog crossbar macro for tile l1_r0c0 (black box): 3 DACs of 8 bits drive
// the word lines; 2 differential TIA + ADC channels of 8 bits read the bit-line pairs.
// Protocol: dac_code must be stable while conv_start is high for one cycle; conv_done rises
// when adc_code is valid and stays high until the next conv_start. Weight programming: while
// scan_en is high, each clock shifts scan_in into the macro's 48-bit level register and
// its last bit out on scan_out. The netlist is spice/tiles/l1_r0c0.sp; a behavioural model for
// simulation is rtl/sim/tiny_xbar_l1_r0c0_beh.v.
// The body is analog: its outputs are driven by the macro, not by RTL, and its inputs are
// consumed by the DACs, so lint would flag every port of this empty module.
/* verilator lint_off UNDRIVEN */
/* verilator lint_off UNUSEDSIGNAL */
(* blackbox *)
module tiny_xbar_l1_r0c0 (
    input  wire                      clk,
    input  wire                      conv_start,
    input  wire [23:0] dac_code,
    output wire [15:0] adc_code,
    output wire                      conv_done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
endmodule
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on UNDRIVEN */
