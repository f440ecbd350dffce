// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Analog crossbar macro (black box), one module for all 2 tiles, each its tile's whole physical
// array (the tile wrapper routes the layer's rows and columns onto it): ROWS DACs of DAC_BITS bits
// (BIPOLAR = 1: signed codes, the word lines are driven to either sign) drive the word lines; COLS
// differential TIA + ADC channels of ADC_BITS bits read the bit-line pairs. TILE selects the
// instance's netlist: the tile that rtl_datapath.scan_order in the manifest lists at that place,
// whose subckt is spice/tiles/<tile>.sp. A behavioural model for simulation is rtl/sim/tiny_xbar_beh.v.
// Protocol: dac_code must be stable while conv_start is high for one cycle; conv_done rises
// with adc_code valid on the edge the last conversion ends (the read's settling and its tile's
// conversions after the conv_start edge, no clock beyond) and stays high until the next conv_start. Weight programming: while
// scan_en is high, each clock shifts scan_in into the macro's ROWS*COLS*2*LEVEL_BITS-bit level
// register and its last bit out on scan_out.
// The body is analog: its outputs are driven by the macro, not by RTL, and its inputs are
// consumed by the DACs, so lint would flag every port of this empty module.
/* verilator lint_off UNDRIVEN */
/* verilator lint_off UNUSEDSIGNAL */
/* verilator lint_off UNUSEDPARAM */
(* blackbox *)
module tiny_xbar #(
    parameter integer ROWS = 1,
    parameter integer COLS = 1,
    parameter integer DAC_BITS = 8,
    parameter integer ADC_BITS = 8,
    parameter integer LEVEL_BITS = 4,
    parameter integer BIPOLAR = 0,
    parameter integer TILE = 0,
    parameter integer SHARE = 8   // outputs per ADC (spice/readout.sp); a layer's own under --adc-balance on
) (
    input  wire                      clk,
    input  wire                      conv_start,
    input  wire [ROWS*DAC_BITS-1:0]  dac_code,
    output wire [COLS*ADC_BITS-1:0]  adc_code,
    output wire                      conv_done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
endmodule
/* verilator lint_on UNUSEDPARAM */
/* verilator lint_on UNUSEDSIGNAL */
/* verilator lint_on UNDRIVEN */
