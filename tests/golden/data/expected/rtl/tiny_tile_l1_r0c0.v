// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Digital wrapper of tile l1_r0c0 (layer l1, schedule step 0, grid slot 1,0).
// On 'start' it latches dac_in, pulses the macro's conv_start, waits for conv_done, latches
// adc_code into adc_out and pulses 'done' for one cycle. The scan chain passes through the macro.
module tiny_tile_l1_r0c0 (
    input  wire                      clk,
    input  wire                      rst_n,
    input  wire                      start,
    input  wire [23:0] dac_in,
    output reg  [15:0] adc_out,
    output reg                       done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
    reg  [23:0] dac_q;
    reg                       conv_start;
    reg                       busy;
    wire [15:0] adc_code;
    wire                      conv_done;

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            dac_q      <= 24'd0;
            conv_start <= 1'b0;
            busy       <= 1'b0;
            adc_out    <= 16'd0;
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

    tiny_xbar_l1_r0c0 u_xbar (
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
