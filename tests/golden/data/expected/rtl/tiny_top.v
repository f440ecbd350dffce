// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Top level: 2 crossbar tile(s) and the sequencing controller. Each tile exposes its DAC
// input bus (8 bits per word line) and its ADC output bus (8 bits per output).
module tiny_top (
    input  wire clk,
    input  wire rst_n,
    input  wire start,
    output wire busy,
    input  wire [23:0] l1_r0c0_dac_in,
    output wire [15:0] l1_r0c0_adc_out,
    input  wire [15:0] l2_r0c0_dac_in,
    output wire [7:0] l2_r0c0_adc_out,
    output wire done
);
    wire [1:0] tile_start;
    wire [1:0] tile_done;

    tiny_ctrl u_ctrl (
        .clk        (clk),
        .rst_n      (rst_n),
        .start      (start),
        .tile_start (tile_start),
        .tile_done  (tile_done),
        .busy       (busy),
        .done       (done)
    );

    // tile 0: layer l1, step 0
    tiny_tile_l1_r0c0 u_l1_r0c0 (
        .clk     (clk),
        .rst_n   (rst_n),
        .start   (tile_start[0]),
        .dac_in  (l1_r0c0_dac_in),
        .adc_out (l1_r0c0_adc_out),
        .done    (tile_done[0])
    );

    // tile 1: layer l2, step 1
    tiny_tile_l2_r0c0 u_l2_r0c0 (
        .clk     (clk),
        .rst_n   (rst_n),
        .start   (tile_start[1]),
        .dac_in  (l2_r0c0_dac_in),
        .adc_out (l2_r0c0_adc_out),
        .done    (tile_done[1])
    );

endmodule
