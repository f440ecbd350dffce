// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Digital wrapper of a crossbar tile, one module for all 2 tiles: each instance gets its tile's
// ROWS (word lines), COLS (outputs), DAC_BITS (code bits; BIPOLAR = 1: signed codes, the DACs drive
// either sign), ADC_BITS, LEVEL_BITS and TILE (its place in the scan chain: the manifest's
// rtl_datapath.scan_order names the tile, and its netlist is spice/tiles/<tile>.sp).
// On 'start' it latches dac_in, pulses the macro's conv_start, waits for conv_done, latches
// adc_code into adc_out and pulses 'done' for one cycle. The scan chain passes through the macro.
module tiny_tile #(
    parameter integer ROWS = 1,
    parameter integer COLS = 1,
    parameter integer DAC_BITS = 8,
    parameter integer ADC_BITS = 8,
    parameter integer LEVEL_BITS = 4,
    parameter integer BIPOLAR = 0,
    parameter integer TILE = 0
) (
    input  wire                      clk,
    input  wire                      rst_n,
    input  wire                      start,
    input  wire [ROWS*DAC_BITS-1:0]  dac_in,
    output reg  [COLS*ADC_BITS-1:0]  adc_out,
    output reg                       done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
    reg  [ROWS*DAC_BITS-1:0] dac_q;
    reg                      conv_start;
    reg                      busy;
    wire [COLS*ADC_BITS-1:0] adc_code;
    wire                     conv_done;

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            dac_q      <= {ROWS*DAC_BITS{1'b0}};
            conv_start <= 1'b0;
            busy       <= 1'b0;
            adc_out    <= {COLS*ADC_BITS{1'b0}};
            done       <= 1'b0;
        end else begin
            conv_start <= 1'b0;
            done       <= 1'b0;
            if (start && !busy) begin
                dac_q      <= dac_in;
                conv_start <= 1'b1;
                busy       <= 1'b1;
            end else if (busy && !conv_start && conv_done) begin
                adc_out <= adc_code;
                done    <= 1'b1;
                busy    <= 1'b0;
            end
        end
    end

    tiny_xbar #(.ROWS(ROWS), .COLS(COLS), .DAC_BITS(DAC_BITS), .ADC_BITS(ADC_BITS), .LEVEL_BITS(LEVEL_BITS),
        .BIPOLAR(BIPOLAR), .TILE(TILE)) u_xbar (
        .clk        (clk),
        .conv_start (conv_start),
        .dac_code   (dac_q),
        .adc_code   (adc_code),
        .conv_done  (conv_done),
        .scan_en    (scan_en),
        .scan_in    (scan_in),
        .scan_out   (scan_out)
    );
endmodule
