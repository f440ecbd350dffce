// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Digital wrapper of a crossbar tile, one module for all 2 tiles: each instance gets its tile's
// ROWS (input rows), COLS (outputs), PROWS x PCOLS (its physical array), RSEL_BITS and CSEL_BITS (its
// routing selects), DAC_BITS (code bits; signed codes on a bipolar tile) and ADC_BITS, and it
// drives the tile's crossbar macro, which the chip top instantiates beside it (x_<tile>, with the
// tile's place TILE in the scan chain: the manifest's rtl_datapath.scan_order names the tile, and
// its netlist is spice/tiles/<tile>.sp). Nothing in the wrapper is particular to one tile, so tiles
// of one shape share one module: a chip of thousands of tiles elaborates a handful.
// 'start' (a register of the chip top) is the macro's conv_start while the tile is idle: on that
// clock edge the macro's read begins with the DAC registers on its word lines (dac_phys). The word
// lines must hold while the read settles, until the outputs' sample-and-holds take it (the
// readout, compile --adc-share > 1): the chip top's gather of the next position waits SETTLE clocks
// after a start before it writes the registers (backend/verilog.SETTLE). A tile without
// sample-and-holds (one ADC per output) whose layer gathers during its reads has HOLD = 1: the
// wrapper latches the registers at the start and shows the latch on the word lines for the whole
// read, so the gather may overwrite the registers. The macro's conv_done (a register, high until its next conv_start) is
// 'done' while the tile reads: on that edge the routed ADC codes go into adc_out and the sequencer
// sees the read finished. The macro raises conv_done on the edge its last conversion ends; a
// 'start' that finds the read done starts the next read on the edge that latches its codes (a
// layer that stores while its tiles read asks for the next read before this one is done:
// backend/verilog.py, READ_OVERHEAD and ARMED_OVERHEAD).
// The macro is the tile's physical array, PROWS word lines by PCOLS pairs of bit lines. Which word
// line each input row drives and which pair each output column reads is the routing register, so a
// chip whose test found stuck cells places its rows and columns around them (manifest: placement;
// passes/fault_map.py) with the same RTL, each row and column within its bank: word line w = row
// and pair q = column, modulo BANK. Its bits, from bit 0: input row i's word line
// ([i*RSEL_BITS +: RSEL_BITS]), then output column j's pair ([ROWS*RSEL_BITS + j*CSEL_BITS +:
// CSEL_BITS]). The scan chain runs through the macro's level register (scan_in is the macro's
// scan_out) and then the routing register.
// The DAC registers, one per word line, are filled by the layer's gather: while gwe is high, lane l
// carries the layer's input row glix[l] (its code in gval), and the tile holding that row (its rows
// are row0 .. row0+ROWS-1) writes the code into the register of the word line the row is routed to:
// LANES writes a clock, each a routing-table read and a word-line decoder. The word lines are in
// BANK banks: the placement keeps row i on a word line w = i (mod BANK) and lane l carries the
// layer's rows l (mod BANK) (backend/verilog.py, step_lanes), so lane l only ever writes the word
// lines w = l - ROW0_MOD (mod BANK) (ROW0_MOD = row0 mod BANK), and its decoder and write cover that
// bank alone: a decoder output a word line in all, not one a lane and word line. A word line no row
// is routed to is never written and holds the code 0 it takes at reset and while the chain shifts.
// The registers drive the word lines (dac_phys) from 'start' on; the next position's gather writes
// them once the read has settled (or, with HOLD, into the registers while the latch drives them).
// Written with whole-vector selects and loops over the lanes and columns only: a simulator or a
// linter that elaborates every instance (Verilator does) holds little per tile.
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
    parameter integer BANK = 1,
    parameter integer ROW0_MOD = 0,
    parameter integer IW = 1,
    parameter integer IBITS = 1,
    parameter integer HOLD = 0
) (
    input  wire                      clk,
    input  wire                      rst_n,
    input  wire                      start,
    input  wire                      gwe,
    input  wire [IW-1:0]             row0,
    input  wire [LANES*IW-1:0]       glix,
    input  wire [LANES*DAC_BITS-1:0] gval,
    output reg  [COLS*ADC_BITS-1:0]  adc_out,
    output wire                      done,
    output wire                      conv_start,
    output wire [PROWS*DAC_BITS-1:0] dac_phys,
    input  wire [PCOLS*ADC_BITS-1:0] adc_phys,
    input  wire                      conv_done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
    /*verilator no_inline_module*/   // one body for thousands of instances: lint and simulation keep it shared
    localparam integer ROUTE_BITS = ROWS * RSEL_BITS + COLS * CSEL_BITS;
    localparam integer PAIR0 = ROWS * RSEL_BITS;          // the pair selects
    reg  [PROWS*DAC_BITS-1:0] dac_r;                      // word line w's code at [w*DAC_BITS +: DAC_BITS]
    reg                      busy;
    reg  [COLS*ADC_BITS-1:0] adc_code;

    // the routing register, behind the macro on the scan chain
    reg  [ROUTE_BITS-1:0]    route;
    always @(posedge clk) if (scan_en) route <= {scan_in, route[ROUTE_BITS-1:1]};
    assign scan_out = route[0];

    // gather lane l's row is one of this tile's (lane_in) and drives word line lane_wl. The rows it
    // carries are l - ROW0_MOD modulo BANK: with BANK a power of two those low bits of the row are a
    // constant, so its routing-table read picks among ROWS/BANK entries, not ROWS
    localparam integer POW2 = ((BANK & (BANK - 1)) == 0) ? 1 : 0;
    reg                      lane_in [0:LANES-1];
    reg  [RSEL_BITS-1:0]     lane_wl [0:LANES-1];
    reg  [31:0]              d;
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [31:0]              dr;                          // its low IBITS index the table
    /* verilator lint_on UNUSEDSIGNAL */
    integer i;
    always @* for (i = 0; i < LANES; i = i + 1) begin
        d = {{(32-IW){1'b0}}, glix[i*IW +: IW]} - {{(32-IW){1'b0}}, row0};   // the row within this tile; wraps above ROWS below row0
        dr = (POW2 != 0) ? ((d & ~(BANK - 1)) | ((i + BANK - ROW0_MOD) % BANK)) : d;
        lane_in[i] = (d < ROWS);
        lane_wl[i] = route[dr[IBITS-1:0]*RSEL_BITS +: RSEL_BITS];
    end

    // output column j reads the physical pair its select names
    wire [ADC_BITS-1:0]      pair_code [0:PCOLS-1];
    genvar g;
    generate for (g = 0; g < PCOLS; g = g + 1) begin : pair
        assign pair_code[g] = adc_phys[g*ADC_BITS +: ADC_BITS];
    end endgenerate
    // (a pair of its bank: q = j modulo BANK, so with BANK a power of two those low bits of the
    // select are a constant and it picks among PCOLS/BANK pairs)
    /* verilator lint_off UNUSEDSIGNAL */
    reg  [31:0]              cs;                          // its low CSEL_BITS select the pair
    /* verilator lint_on UNUSEDSIGNAL */
    always @* for (i = 0; i < COLS; i = i + 1) begin
        cs = {{(32-CSEL_BITS){1'b0}}, route[PAIR0 + i*CSEL_BITS +: CSEL_BITS]};
        if (POW2 != 0) cs = (cs & ~(BANK - 1)) | (i % BANK);
        adc_code[i*ADC_BITS +: ADC_BITS] = pair_code[cs[CSEL_BITS-1:0]];
    end

    // lane l writes its code to the word line its row is routed to, which is in its bank (the word
    // lines w = l - ROW0_MOD modulo BANK): a decoder and an and-or over its bank's word lines only,
    // the other bits masked off by a constant. With BANK = LANES the lanes' banks are apart; with
    // one bank (--route-banks off) every lane decodes every word line. (Whole-vector operations in a
    // loop over the lanes: Verilator unrolls a loop over the word lines in every instance.)
    function automatic [PROWS*DAC_BITS-1:0] bank_mask(input integer r);
        integer w;
        begin
            bank_mask = {PROWS*DAC_BITS{1'b0}};
            for (w = 0; w < PROWS; w = w + 1)
                if (w % BANK == r) bank_mask[w*DAC_BITS +: DAC_BITS] = {DAC_BITS{1'b1}};
        end
    endfunction
    localparam [PROWS*DAC_BITS-1:0] WL0 = {{(PROWS-1)*DAC_BITS{1'b0}}, {DAC_BITS{1'b1}}};
    wire [PROWS*DAC_BITS-1:0] lmask [0:LANES-1];
    wire [PROWS*DAC_BITS-1:0] ldata [0:LANES-1];
    generate for (g = 0; g < LANES; g = g + 1) begin : lane
        localparam [PROWS*DAC_BITS-1:0] BM = bank_mask((g + BANK - ROW0_MOD) % BANK);
        assign lmask[g] = lane_in[g] ? (WL0 << (lane_wl[g] * DAC_BITS)) & BM : {PROWS*DAC_BITS{1'b0}};
        assign ldata[g] = {PROWS{gval[g*DAC_BITS +: DAC_BITS]}} & lmask[g];
    end endgenerate
    reg  [PROWS*DAC_BITS-1:0] dac_n;
    integer l;
    always @* begin
        dac_n = dac_r;
        for (l = 0; l < LANES; l = l + 1)
            dac_n = (dac_n & ~lmask[l]) | ldata[l];
    end
    always @(posedge clk or negedge rst_n)
        if (!rst_n) dac_r <= {PROWS*DAC_BITS{1'b0}};
        else if (scan_en) dac_r <= {PROWS*DAC_BITS{1'b0}};     // a new routing leaves no stale word line
        else if (gwe) dac_r <= dac_n;

    // the read: conv_start on the edge 'start' finds the tile idle or its read done (the next read
    // then starts on the edge that latches this one's codes), done on the edge conv_done finds it
    // reading
    assign conv_start = start && (!busy || conv_done);
    assign done       = busy && conv_done;
    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            busy     <= 1'b0;
            adc_out  <= {COLS*ADC_BITS{1'b0}};
        end else begin
            if (conv_start) busy <= 1'b1;
            else if (done) busy <= 1'b0;
            if (done) adc_out <= adc_code;
        end
    end
    generate if (HOLD != 0) begin : hold
        reg  [PROWS*DAC_BITS-1:0] dac_held;               // the DAC registers as the read took them
        always @(posedge clk or negedge rst_n)
            if (!rst_n) dac_held <= {PROWS*DAC_BITS{1'b0}};
            else if (conv_start) dac_held <= dac_r;
        assign dac_phys = busy ? dac_held : dac_r;
    end else begin : direct
        assign dac_phys = dac_r;
    end endgenerate

endmodule
