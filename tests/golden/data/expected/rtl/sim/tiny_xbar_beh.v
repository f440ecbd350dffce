// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Behavioural model of the analog crossbar macro (all tiles), for simulation only.
// Levels: cell (i, j, side) holds a LEVEL_BITS-bit level at bits [((i*COLS + j)*2 + side)*LEVEL_BITS +: LEVEL_BITS]
// of the scan register (side 0 = G+, 1 = G-); the first bit shifted in ends at bit 0.
// Column j: D = sum_i dac_i * (lpos_ij - lneg_ij), the integer behind its current (DAC codes unsigned,
// or signed with BIPOLAR = 1), and the ADC gives clamp((D * KQ + 2^(SK-1)) >>> SK, -2^(ADC_BITS-1),
// 2^(ADC_BITS-1) - 1): the layer's full scale in LSBs, KQ and SK per tile from the table below,
// 26 cycles after conv_start: the read, then 8 conversion(s) per ADC (8 output(s) share
// one ADC through sample-and-holds and a multiplexer, spice/readout.sp).
module tiny_xbar #(
    parameter integer ROWS = 1,
    parameter integer COLS = 1,
    parameter integer DAC_BITS = 8,
    parameter integer ADC_BITS = 8,
    parameter integer LEVEL_BITS = 4,
    parameter integer BIPOLAR = 0,
    parameter integer TILE = 0
) (
    input  wire                      clk,
    input  wire                      conv_start,
    input  wire [ROWS*DAC_BITS-1:0]  dac_code,
    output reg  [COLS*ADC_BITS-1:0]  adc_code,
    output reg                       conv_done,
    input  wire                      scan_en,
    input  wire                      scan_in,
    output wire                      scan_out
);
    function integer kq_of(input integer tile);
        case (tile)
            0: kq_of = 38988;
            1: kq_of = 45769;
            default: kq_of = 0;
        endcase
    endfunction
    function integer sk_of(input integer tile);
        case (tile)
            0: sk_of = 21;
            1: sk_of = 21;
            default: sk_of = 1;
        endcase
    endfunction
    localparam integer KQ = kq_of(TILE);
    localparam integer SK = sk_of(TILE);
    localparam integer SCAN_BITS = ROWS * COLS * 2 * LEVEL_BITS;
    reg [SCAN_BITS-1:0] levels;
    reg [COLS*ADC_BITS-1:0] result;
    integer i, j, cnt;
    reg signed [63:0] d, q, x;
    assign scan_out = levels[0];
    initial begin conv_done = 1'b0; adc_code = 0; cnt = -1; end
    always @(posedge clk) if (scan_en) levels <= {scan_in, levels[SCAN_BITS-1:1]};
    // the conversion is evaluated once per conv_start (not on every scan shift)
    task convert;
        for (j = 0; j < COLS; j = j + 1) begin
            d = 0;
            for (i = 0; i < ROWS; i = i + 1) begin
                x = $signed({1'b0, dac_code[i*DAC_BITS +: DAC_BITS]});
                if (BIPOLAR != 0 && dac_code[i*DAC_BITS + DAC_BITS - 1]) x = x - (64'sd1 <<< DAC_BITS);
                d = d + x * ($signed({1'b0, levels[((i*COLS + j)*2)*LEVEL_BITS +: LEVEL_BITS]})
                             - $signed({1'b0, levels[((i*COLS + j)*2 + 1)*LEVEL_BITS +: LEVEL_BITS]}));
            end
            q = (d * KQ + (64'sd1 <<< (SK - 1))) >>> SK;
            if (q > (64'sd1 <<< (ADC_BITS - 1)) - 1) q = (64'sd1 <<< (ADC_BITS - 1)) - 1;
            if (q < -(64'sd1 <<< (ADC_BITS - 1))) q = -(64'sd1 <<< (ADC_BITS - 1));
            result[j*ADC_BITS +: ADC_BITS] = q[ADC_BITS-1:0];
        end
    endtask
    always @(posedge clk) begin
        if (conv_start) begin
            convert;
            conv_done <= 1'b0;
            cnt <= 26;
        end else if (cnt > 0) begin
            cnt <= cnt - 1;
        end else if (cnt == 0) begin
            adc_code <= result;
            conv_done <= 1'b1;
            cnt <= -1;
        end
    end
endmodule
