// amsc 0.1.0 | pdk generic | design tiny | source sha256 e681a353875842f094ab0a318d23805dab79a8dbd460b6bb68d641ea35db3fe1
// Sequencing controller: on 'start' it runs the 2 schedule step(s) in order. A step pulses
// tile_start for all of its tiles at once and waits until each has pulsed tile_done; after the
// last step it pulses 'done'. busy is high from start to done.
module tiny_ctrl (
    input  wire                 clk,
    input  wire                 rst_n,
    input  wire                 start,
    output reg  [1:0] tile_start,
    input  wire [1:0] tile_done,
    output reg                  busy,
    output reg                  done
);
    localparam [1:0] S_IDLE = 2'd0, S_LAUNCH = 2'd1, S_WAIT = 2'd2;
    localparam [0:0] LAST_STEP = 1'd1;

    // Tiles of each step, bit k = tile k.
    function automatic [1:0] step_mask(input [0:0] s);
        case (s)
            1'd0: step_mask = 2'b01;
            1'd1: step_mask = 2'b10;
            default: step_mask = 2'd0;
        endcase
    endfunction

    reg [1:0]  state;
    reg [0:0] step;
    reg [1:0] pending;

    always @(posedge clk or negedge rst_n) begin
        if (!rst_n) begin
            state      <= S_IDLE;
            step       <= 1'd0;
            pending    <= 2'd0;
            tile_start <= 2'd0;
            busy       <= 1'b0;
            done       <= 1'b0;
        end else begin
            tile_start <= 2'd0;
            done       <= 1'b0;
            case (state)
                S_IDLE: if (start) begin
                    step  <= 1'd0;
                    busy  <= 1'b1;
                    state <= S_LAUNCH;
                end
                S_LAUNCH: begin
                    tile_start <= step_mask(step);
                    pending    <= step_mask(step);
                    state      <= S_WAIT;
                end
                S_WAIT: begin
                    if ((pending & ~tile_done) == 2'd0) begin
                        if (step == LAST_STEP) begin
                            busy  <= 1'b0;
                            done  <= 1'b1;
                            state <= S_IDLE;
                        end else begin
                            step  <= step + 1'b1;
                            state <= S_LAUNCH;
                        end
                    end else begin
                        pending <= pending & ~tile_done;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end
endmodule
