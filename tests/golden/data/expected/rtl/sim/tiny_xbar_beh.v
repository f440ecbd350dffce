// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Behavioural model of the analog crossbar macro (all tiles), for simulation only.
// Levels: cell (i, j, side) holds a LEVEL_BITS-bit level at bits [((i*COLS + j)*2 + side)*LEVEL_BITS +: LEVEL_BITS]
// of the scan register (side 0 = G+, 1 = G-); the first bit shifted in ends at bit 0.
// The SCAN_BITS-bit shift register is modelled as the delay line it is: a ring of bits and a write
// pointer (bit b of the register is ring[(ptr + b) mod SCAN_BITS]), so a shift costs one bit, not
// SCAN_BITS, and the levels are unpacked once after the chain has moved, at the next conversion.
// Column j: D = sum_i dac_i * (lpos_ij - lneg_ij), the integer behind its current (DAC codes unsigned,
// or signed with BIPOLAR = 1), and the ADC gives clamp((D * KQ + 2^(SK-1)) >>> SK, -2^(ADC_BITS-1),
// 2^(ADC_BITS-1) - 1): the layer's full scale in LSBs, KQ and SK per tile from the table below,
// LATENCY cycles after conv_start (26 by default): the read, then SHARE conversion(s) per ADC (SHARE
// output(s) share one ADC through sample-and-holds and a multiplexer, spice/readout.sp; by default 8,
// a layer's own under compile --adc-balance on).
module tiny_xbar #(
    parameter integer ROWS = 1,
    parameter integer COLS = 1,
    parameter integer DAC_BITS = 8,
    parameter integer ADC_BITS = 8,
    parameter integer LEVEL_BITS = 4,
    parameter integer BIPOLAR = 0,
    parameter integer TILE = 0,
    parameter integer SHARE = 8
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
    localparam integer LATENCY = 2 + SHARE * 3;   // clocks: the read, SHARE conversions
    localparam integer KQ = kq_of(TILE);
    localparam integer SK = sk_of(TILE);
    localparam integer SCAN_BITS = ROWS * COLS * 2 * LEVEL_BITS;
    reg ring [0:SCAN_BITS-1];
    integer ptr, shifts, unpacked;
    // lpos - lneg of cell (i, j) at dlev[i*COLS + j], unpacked from the ring
    integer dlev [0:ROWS*COLS-1];
    reg [COLS*ADC_BITS-1:0] result;
    integer i, j, b, k, cnt;
    reg signed [63:0] d, q, x;
    reg [LEVEL_BITS-1:0] lp, ln;
    reg [8*32-1:0] preload;
    assign scan_out = ring[ptr];
    initial begin conv_done = 1'b0; adc_code = 0; cnt = -1; ptr = 0; shifts = 0; unpacked = -1; end
    // +preload: the ring as the whole chain's shifting would leave it, read from preload_t<TILE>.mem
    // (rtl-sim writes it from scan.mem) instead of shifted in bit by bit
    initial if ($test$plusargs("preload")) begin
        $sformat(preload, "preload_t%0d.mem", TILE);
        $readmemb(preload, ring);
    end
    always @(posedge clk) if (scan_en) begin
        ring[ptr] <= scan_in;
        ptr <= (ptr == SCAN_BITS - 1) ? 0 : ptr + 1;
        shifts <= shifts + 1;
    end
    task unpack; begin
        k = ptr;
        for (i = 0; i < ROWS * COLS; i = i + 1) begin
            for (b = 0; b < LEVEL_BITS; b = b + 1) begin
                lp[b] = ring[k];
                k = (k == SCAN_BITS - 1) ? 0 : k + 1;
            end
            for (b = 0; b < LEVEL_BITS; b = b + 1) begin
                ln[b] = ring[k];
                k = (k == SCAN_BITS - 1) ? 0 : k + 1;
            end
            dlev[i] = $signed({1'b0, lp}) - $signed({1'b0, ln});
        end
        unpacked = shifts;
    end endtask
    // the conversion is evaluated once per conv_start (not on every scan shift)
    task convert; begin
        if (unpacked != shifts) unpack;
        for (j = 0; j < COLS; j = j + 1) begin
            d = 0;
            for (i = 0; i < ROWS; i = i + 1) begin
                x = $signed({1'b0, dac_code[i*DAC_BITS +: DAC_BITS]});
                if (BIPOLAR != 0 && dac_code[i*DAC_BITS + DAC_BITS - 1]) x = x - (64'sd1 <<< DAC_BITS);
                d = d + x * dlev[i*COLS + j];
            end
            q = (d * KQ + (64'sd1 <<< (SK - 1))) >>> SK;
            if (q > (64'sd1 <<< (ADC_BITS - 1)) - 1) q = (64'sd1 <<< (ADC_BITS - 1)) - 1;
            if (q < -(64'sd1 <<< (ADC_BITS - 1))) q = -(64'sd1 <<< (ADC_BITS - 1));
            result[j*ADC_BITS +: ADC_BITS] = q[ADC_BITS-1:0];
        end
    end endtask
    // the word lines must hold while the read settles, until the sample-and-holds take it (2
    // clocks; a read without them, SHARE 1, until its conversions end): a code that moves meanwhile
    // would corrupt the circuit's read, and here inverts every code of it, which rtl-sim catches
    localparam integer STABLE = (SHARE > 1) ? 2 : LATENCY;
    reg [ROWS*DAC_BITS-1:0] dac_at_start;
    reg moved;
    initial moved = 1'b0;
    always @(posedge clk) begin
        if (conv_start) begin
            convert;
            dac_at_start <= dac_code;
            moved <= 1'b0;
            conv_done <= 1'b0;
            cnt <= LATENCY;
        end else if (cnt > 1) begin
            if (cnt > LATENCY - STABLE && dac_code !== dac_at_start) moved <= 1'b1;
            cnt <= cnt - 1;
        end else if (cnt == 1) begin
            // the read's last clock: its last conversion ends on this edge, which registers the codes
            // and raises conv_done (LATENCY clocks after the conv_start edge, none beyond)
            adc_code <= (moved || (STABLE == LATENCY && dac_code !== dac_at_start)) ? ~result : result;
            conv_done <= 1'b1;
            cnt <= -1;
        end
    end
endmodule
