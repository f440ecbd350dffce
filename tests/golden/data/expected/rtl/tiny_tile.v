// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Digital wrapper of a crossbar tile, one module for all 2 tiles: each instance gets its tile's
// ROWS (input rows), COLS (outputs), PROWS x PCOLS (its physical array), RSEL_BITS and CSEL_BITS (its
// routing selects), DAC_BITS (code bits; signed codes on a bipolar tile) and ADC_BITS, and it
// drives the tile's crossbar macro, which the chip top instantiates beside it (x_<tile>, with the
// tile's place TILE in the scan chain: the manifest's rtl_datapath.scan_order names the tile, and
// its netlist is spice/tiles/<tile>.sp). Nothing in the wrapper is particular to one tile, so tiles
// of one shape share one module: a chip of thousands of tiles elaborates a handful.
// On 'start' it latches its DAC registers, pulses the macro's conv_start, waits for conv_done,
// latches the routed ADC codes into adc_out and pulses 'done' for one cycle.
// The macro is the tile's physical array, PROWS word lines by PCOLS pairs of bit lines. Which word
// line each input row drives and which pair each output column reads is the routing register, so a
// chip whose test found stuck cells places its rows and columns around them (manifest: placement;
// passes/fault_map.py) with the same RTL. Its bits, from bit 0: input row i's word line
// ([i*RSEL_BITS +: RSEL_BITS]); a used bit per word line (an unused one is held at code 0); output
// column j's pair ([.. + j*CSEL_BITS +: CSEL_BITS]). The scan chain runs through the macro's level
// register (scan_in is the macro's scan_out) and then the routing register.
// The DAC registers, one per word line, are filled by the layer's gather: while gwe is high, lane l
// carries the layer's input row glix[l] (its code in gval), and the tile holding that row (its rows
// are row0 .. row0+ROWS-1) writes the code into the register of the word line the row is routed to:
// LANES writes a clock, a table read each, no word-line multiplexers. 'start' copies the registers
// into the read's latch, so the next position's gather may run while the tile reads.
module tiny_tile #(
    parameter integer ROWS = 1,
    parameter integer COLS = 1,
    parameter integer PROWS = 1,
    parameter integer PCOLS = 1,
    parameter integer RSEL_BITS = 1,
    parameter integer CSEL_BITS = 1,
    parameter integer DAC_BITS = 8,
    parameter integer ADC_BITS = 8,
    parameter integer LANES = 1,
    parameter integer IW = 1,
    parameter integer IBITS = 1
) (
    input  wire                      clk,
    input  wire                      rst_n,
    input  wire                      start,
    input  wire                      gwe,
    input  wire [IW-1:0]             row0,
    input  wire [LANES*IW-1:0]       glix,
    input  wire [LANES*DAC_BITS-1:0] gval,
    output reg  [COLS*ADC_BITS-1:0]  adc_out,
    output reg                       done,
    output reg                       conv_start,
    output reg  [PROWS*DAC_BITS-1:0] dac_phys,
    input  wire [PCOLS*ADC_BITS-1:0] adc_phys,
    input  wire                      conv_done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
    /*verilator no_inline_module*/   // one body for thousands of instances: lint and simulation keep it shared
    localparam integer ROUTE_BITS = ROWS * RSEL_BITS + PROWS + COLS * CSEL_BITS;
    localparam integer USED0 = ROWS * RSEL_BITS;          // the used bits
    localparam integer PAIR0 = ROWS * RSEL_BITS + PROWS;  // the pair selects
    reg  [DAC_BITS-1:0]      dac_r [0:PROWS-1];
    reg  [PROWS*DAC_BITS-1:0] dac_in;
    reg  [PROWS*DAC_BITS-1:0] dac_q;
    reg                      busy;
    reg  [COLS*ADC_BITS-1:0] adc_code;

    // the routing register, behind the macro on the scan chain
    reg  [ROUTE_BITS-1:0]    route;
    always @(posedge clk) if (scan_en) route <= {scan_in, route[ROUTE_BITS-1:1]};
    assign scan_out = route[0];

    // The routing as procedural loops, so that the module's body is the same few statements for a
    // tile of any size (a chip has thousands of instances).
    reg  [RSEL_BITS-1:0]     wl [0:ROWS-1];                   // input row i's word line
    reg  [ADC_BITS-1:0]      pair_code [0:(1<<CSEL_BITS)-1];  // the physical pairs, padded to the selects' range
    reg                      lane_in [0:LANES-1];              // gather lane l's row is one of this tile's ...
    reg  [RSEL_BITS-1:0]     lane_wl [0:LANES-1];              // ... and drives this word line
    reg  [31:0]              d;
    integer i;
    always @* begin
        for (i = 0; i < ROWS; i = i + 1) wl[i] = route[i*RSEL_BITS +: RSEL_BITS];
        for (i = 0; i < LANES; i = i + 1) begin
            d = {{(32-IW){1'b0}}, glix[i*IW +: IW]} - {{(32-IW){1'b0}}, row0};   // the row within this tile; wraps above ROWS below row0
            lane_in[i] = (d < ROWS);
            lane_wl[i] = wl[d[IBITS-1:0]];
        end
    end
    always @* begin
        for (i = 0; i < PROWS; i = i + 1) begin
            dac_in[i*DAC_BITS +: DAC_BITS] = dac_r[i];
            dac_phys[i*DAC_BITS +: DAC_BITS] = route[USED0 + i] ? dac_q[i*DAC_BITS +: DAC_BITS] : {DAC_BITS{1'b0}};
        end
    end
    always @* begin
        for (i = 0; i < (1 << CSEL_BITS); i = i + 1)
            pair_code[i] = (i < PCOLS) ? adc_phys[(i % PCOLS)*ADC_BITS +: ADC_BITS] : {ADC_BITS{1'b0}};
        for (i = 0; i < COLS; i = i + 1)
            adc_code[i*ADC_BITS +: ADC_BITS] = pair_code[route[PAIR0 + i*CSEL_BITS +: CSEL_BITS]];
    end

    integer l;
    always @(posedge clk) if (gwe) for (l = 0; l < LANES; l = l + 1)
        if (lane_in[l]) dac_r[lane_wl[l]] <= gval[l*DAC_BITS +: DAC_BITS];

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

endmodule
