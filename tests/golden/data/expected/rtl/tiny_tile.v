// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Digital wrapper of a crossbar tile, one module for all 2 tiles: each instance gets its tile's
// ROWS (input rows), COLS (outputs), PROWS x PCOLS (its physical array), RSEL_BITS and CSEL_BITS (its
// routing selects), DAC_BITS (code bits; BIPOLAR = 1: signed codes, the DACs drive
// either sign), ADC_BITS, LEVEL_BITS and TILE (its place in the scan chain: the manifest's
// rtl_datapath.scan_order names the tile, and its netlist is spice/tiles/<tile>.sp).
// On 'start' it latches dac_in, pulses the macro's conv_start, waits for conv_done, latches
// adc_code into adc_out and pulses 'done' for one cycle.
// The macro is the tile's physical array, PROWS word lines by PCOLS pairs of bit lines. Which word
// line each input row drives and which pair each output column reads is the routing register, so a
// chip whose test found stuck cells places its rows and columns around them (manifest: placement;
// passes/fault_map.py) with the same RTL. Its bits, from bit 0: input row i's word line
// ([i*RSEL_BITS +: RSEL_BITS], given to the chip top on wl_map: its gather writes row i's DAC code into
// that word line's register, so dac_in holds one code per word line); a used bit per word line (an
// unused one is held at code 0); output column j's pair ([.. + j*CSEL_BITS +: CSEL_BITS]). The scan chain
// runs through the macro's level register and then the routing register.
module tiny_tile #(
    parameter integer ROWS = 1,
    parameter integer COLS = 1,
    parameter integer PROWS = 1,
    parameter integer PCOLS = 1,
    parameter integer RSEL_BITS = 1,
    parameter integer CSEL_BITS = 1,
    parameter integer DAC_BITS = 8,
    parameter integer ADC_BITS = 8,
    parameter integer LEVEL_BITS = 4,
    parameter integer BIPOLAR = 0,
    parameter integer TILE = 0
) (
    input  wire                      clk,
    input  wire                      rst_n,
    input  wire                      start,
    input  wire [PROWS*DAC_BITS-1:0] dac_in,
    output reg  [COLS*ADC_BITS-1:0]  adc_out,
    output reg                       done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out,
    output wire [ROWS*RSEL_BITS-1:0] wl_map
);
    localparam integer ROUTE_BITS = ROWS * RSEL_BITS + PROWS + COLS * CSEL_BITS;
    localparam integer USED0 = ROWS * RSEL_BITS;          // the used bits
    localparam integer PAIR0 = ROWS * RSEL_BITS + PROWS;  // the pair selects
    reg  [PROWS*DAC_BITS-1:0] dac_q;
    reg                      conv_start;
    reg                      busy;
    wire [PCOLS*ADC_BITS-1:0] adc_phys;
    wire [COLS*ADC_BITS-1:0] adc_code;
    wire [PROWS*DAC_BITS-1:0] dac_phys;
    wire                     conv_done;
    wire                     macro_scan_out;

    // the routing register, behind the macro on the scan chain
    reg  [ROUTE_BITS-1:0]    route;
    always @(posedge clk) if (scan_en) route <= {macro_scan_out, route[ROUTE_BITS-1:1]};
    assign scan_out = route[0];
    assign wl_map = route[ROWS*RSEL_BITS-1:0];
    // physical pairs by index, padded to the selects' range
    wire [ADC_BITS-1:0] pair_code [0:(1<<CSEL_BITS)-1];
    genvar g;
    generate
        for (g = 0; g < (1 << CSEL_BITS); g = g + 1) begin : g_pairs
            if (g < PCOLS) begin : g_in
                assign pair_code[g] = adc_phys[g*ADC_BITS +: ADC_BITS];
            end else begin : g_off
                assign pair_code[g] = {ADC_BITS{1'b0}};
            end
        end
        for (g = 0; g < PROWS; g = g + 1) begin : g_wl
            assign dac_phys[g*DAC_BITS +: DAC_BITS] = route[USED0 + g] ? dac_q[g*DAC_BITS +: DAC_BITS] : {DAC_BITS{1'b0}};
        end
        for (g = 0; g < COLS; g = g + 1) begin : g_col
            assign adc_code[g*ADC_BITS +: ADC_BITS] = pair_code[route[PAIR0 + g*CSEL_BITS +: CSEL_BITS]];
        end
    endgenerate

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            dac_q      <= {PROWS*DAC_BITS{1'b0}};
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

    tiny_xbar #(.ROWS(PROWS), .COLS(PCOLS), .DAC_BITS(DAC_BITS), .ADC_BITS(ADC_BITS), .LEVEL_BITS(LEVEL_BITS),
        .BIPOLAR(BIPOLAR), .TILE(TILE)) u_xbar (
        .clk        (clk),
        .conv_start (conv_start),
        .dac_code   (dac_phys),
        .adc_code   (adc_phys),
        .conv_done  (conv_done),
        .scan_en    (scan_en),
        .scan_in    (scan_in),
        .scan_out   (macro_scan_out)
    );
endmodule
