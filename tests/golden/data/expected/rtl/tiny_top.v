// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// The chip: 2 crossbar tile(s) behind their wrappers, the feature-map memories, the gather
// (im2col) units that feed the DACs, the partial-sum accumulators and requantizers (bias, ReLU,
// saturation) after the ADCs, max pooling, and the sequencing FSM that runs the layers in
// schedule order. Host interface: stream one image in (3 DAC codes of 8 bits, valid/ready),
// then read 1 signed 16-bit results out (valid/ready). Weights are programmed first
// through the scan chain (scan_en high, one level bit per clock, see rtl/sim/scan order in the manifest).
// The integer arithmetic is compiler/backend/qmodel.py's, bit for bit.
module tiny_top (
    input  wire                  clk,
    input  wire                  rst_n,
    input  wire                  scan_en,
    input  wire                  scan_in,
    output wire                  scan_out,
    input  wire                  in_valid,
    output wire                  in_ready,
    input  wire [7:0]        in_data,
    output wire                  out_valid,
    input  wire                  out_ready,
    output wire [15:0]       out_data,
    output wire                  busy
);
    reg [7:0] mem_in [0:2];
    reg [7:0] mem_l0 [0:1];
    reg signed [15:0] mem_l1 [0:0];

    localparam [3:0] S_IN = 4'd0;
    localparam [3:0] L0_G = 4'd1;
    localparam [3:0] L0_R = 4'd2;
    localparam [3:0] L0_W = 4'd3;
    localparam [3:0] L0_S = 4'd4;
    localparam [3:0] L1_G = 4'd5;
    localparam [3:0] L1_R = 4'd6;
    localparam [3:0] L1_W = 4'd7;
    localparam [3:0] L1_S = 4'd8;
    localparam [3:0] S_OUT = 4'd9;
    reg [3:0] state;
    // counters of 16 bits: enough for the largest feature map, layer and position count
    reg [15:0] idx;   // beat, gather element, output column or pooled output
    reg [15:0] pos;   // output position of a convolution

    assign in_ready  = (state == S_IN);
    assign out_valid = (state == S_OUT);
    assign out_data  = mem_l1[idx[0:0]];
    assign busy      = (state != S_IN);

    // ---- tiles -------------------------------------------------------------------------------
    wire scan_1;
    wire scan_2;
    wire scan_0 = scan_in;
    assign scan_out = scan_2;
    reg [7:0] dac_0 [0:2];
    reg start_0;
    reg [0:0] got_0;
    wire [15:0] adc_l1_r0c0;
    wire done_l1_r0c0;
    // tile l1_r0c0: layer l1, schedule step 0, grid slot 1,0
    tiny_tile #(.ROWS(3), .COLS(2), .DAC_BITS(8), .ADC_BITS(8),
        .LEVEL_BITS(4), .BIPOLAR(0), .TILE(0)) u_l1_r0c0 (
        .clk      (clk),
        .rst_n    (rst_n),
        .start    (start_0),
        .dac_in   ({ dac_0[2], dac_0[1], dac_0[0] }),
        .adc_out  (adc_l1_r0c0),
        .done     (done_l1_r0c0),
        .scan_en  (scan_en),
        .scan_in  (scan_0),
        .scan_out (scan_1)
    );
    wire [0:0] dones_0 = { done_l1_r0c0 };
    // accumulators: the ADC codes of the row-split tiles of each output column
    wire signed [63:0] acc_0 [0:1];
    assign acc_0[0] = $signed({{56{adc_l1_r0c0[7]}}, adc_l1_r0c0[7:0]});
    assign acc_0[1] = $signed({{56{adc_l1_r0c0[15]}}, adc_l1_r0c0[15:8]});
    function automatic signed [63:0] mq_0(input [15:0] col);
        case (col)
            16'd0: mq_0 = 64'sd194741;
            16'd1: mq_0 = 64'sd194741;
            default: mq_0 = 64'sd0;
        endcase
    endfunction
    function automatic signed [63:0] bq_0(input [15:0] col);
        case (col)
            16'd0: bq_0 = 64'sd1417592;
            16'd1: bq_0 = -64'sd2736879;
            default: bq_0 = 64'sd0;
        endcase
    endfunction
    wire signed [63:0] rq_0 = (acc_0[idx[0:0]] * mq_0(idx) + bq_0(idx)) >>> 16;
    // address arithmetic is 32 bits wide; the bits above the memory's address width are zero
    /* verilator lint_off UNUSEDSIGNAL */
    wire [31:0] daddr_0 = {16'd0, idx} * 1 + {16'd0, pos};
    /* verilator lint_on UNUSEDSIGNAL */
    // activation unit: clamp
    wire signed [63:0] v_0 = rq_0;
    wire signed [63:0] c_0 = (v_0 < 64'sd0) ? 64'sd0 : (v_0 > 64'sd255) ? 64'sd255 : v_0;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [63:0] cu_0 = c_0;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [7:0] y_0 = cu_0[7:0];
    wire [7:0] gval_0 = mem_in[idx[1:0]];
    reg [7:0] dac_1 [0:1];
    reg start_1;
    reg [0:0] got_1;
    wire [7:0] adc_l2_r0c0;
    wire done_l2_r0c0;
    // tile l2_r0c0: layer l2, schedule step 1, grid slot 0,1
    tiny_tile #(.ROWS(2), .COLS(1), .DAC_BITS(8), .ADC_BITS(8),
        .LEVEL_BITS(4), .BIPOLAR(0), .TILE(1)) u_l2_r0c0 (
        .clk      (clk),
        .rst_n    (rst_n),
        .start    (start_1),
        .dac_in   ({ dac_1[1], dac_1[0] }),
        .adc_out  (adc_l2_r0c0),
        .done     (done_l2_r0c0),
        .scan_en  (scan_en),
        .scan_in  (scan_1),
        .scan_out (scan_2)
    );
    wire [0:0] dones_1 = { done_l2_r0c0 };
    // accumulators: the ADC codes of the row-split tiles of each output column
    wire signed [63:0] acc_1 [0:0];
    assign acc_1[0] = $signed({{56{adc_l2_r0c0[7]}}, adc_l2_r0c0[7:0]});
    function automatic signed [63:0] mq_1(input [15:0] col);
        case (col)
            16'd0: mq_1 = 64'sd3014564;
            default: mq_1 = 64'sd0;
        endcase
    endfunction
    function automatic signed [63:0] bq_1(input [15:0] col);
        case (col)
            16'd0: bq_1 = 64'sd2048;
            default: bq_1 = 64'sd0;
        endcase
    endfunction
    wire signed [63:0] rq_1 = (acc_1[idx[0:0]] * mq_1(idx) + bq_1(idx)) >>> 12;
    // address arithmetic is 32 bits wide; the bits above the memory's address width are zero
    /* verilator lint_off UNUSEDSIGNAL */
    wire [31:0] daddr_1 = {16'd0, idx} * 1 + {16'd0, pos};
    /* verilator lint_on UNUSEDSIGNAL */
    // activation unit: clamp
    wire signed [63:0] v_1 = rq_1;
    wire signed [63:0] c_1 = (v_1 < -64'sd32768) ? -64'sd32768 : (v_1 > 64'sd32767) ? 64'sd32767 : v_1;
    /* verilator lint_off UNUSEDSIGNAL */
    wire [63:0] cu_1 = c_1;
    /* verilator lint_on UNUSEDSIGNAL */
    wire [15:0] y_1 = cu_1[15:0];
    wire [7:0] gval_1 = mem_l0[idx[0:0]];

    // ---- sequencing --------------------------------------------------------------------------
    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            state <= S_IN;
            idx   <= 16'd0;
            pos   <= 16'd0;
            start_0 <= 1'b0;
            got_0   <= 1'd0;
            start_1 <= 1'b0;
            got_1   <= 1'd0;
        end else begin
            case (state)
                S_IN: if (in_valid) begin
                    mem_in[idx[1:0]] <= in_data;
                    if (idx == 16'd2) begin
                        idx   <= 16'd0;
                        state <= L0_G;
                    end else idx <= idx + 16'd1;
                end
                // layer l1: 1 position(s) x 3 inputs -> 2 outputs on 1 tile(s)
                L0_G: begin
                    dac_0[idx[1:0]] <= gval_0;
                    if (idx == 16'd2) begin
                        idx   <= 16'd0;
                        state <= L0_R;
                    end else idx <= idx + 16'd1;
                end
                L0_R: begin
                    start_0 <= 1'b1;
                    got_0   <= 1'd0;
                    state   <= L0_W;
                end
                L0_W: begin
                    start_0 <= 1'b0;
                    got_0   <= got_0 | dones_0;
                    if ((got_0 | dones_0) == 1'b1) state <= L0_S;
                end
                L0_S: begin
                    mem_l0[daddr_0[0:0]] <= y_0;
                    if (idx == 16'd1) begin
                        idx <= 16'd0;
                        state <= L1_G;
                    end else idx <= idx + 16'd1;
                end
                // layer l2: 1 position(s) x 2 inputs -> 1 outputs on 1 tile(s)
                L1_G: begin
                    dac_1[idx[0:0]] <= gval_1;
                    if (idx == 16'd1) begin
                        idx   <= 16'd0;
                        state <= L1_R;
                    end else idx <= idx + 16'd1;
                end
                L1_R: begin
                    start_1 <= 1'b1;
                    got_1   <= 1'd0;
                    state   <= L1_W;
                end
                L1_W: begin
                    start_1 <= 1'b0;
                    got_1   <= got_1 | dones_1;
                    if ((got_1 | dones_1) == 1'b1) state <= L1_S;
                end
                L1_S: begin
                    mem_l1[daddr_1[0:0]] <= y_1;
                    if (idx == 16'd0) begin
                        idx <= 16'd0;
                        state <= S_OUT;
                    end else idx <= idx + 16'd1;
                end
                S_OUT: if (out_ready) begin
                    if (idx == 16'd0) begin
                        idx   <= 16'd0;
                        state <= S_IN;
                    end else idx <= idx + 16'd1;
                end
                default: state <= S_IN;
            endcase
        end
    end
endmodule
