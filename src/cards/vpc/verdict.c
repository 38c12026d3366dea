/* The gateway MAC, shared by the pipeline's pieces (verdict.h). */
#include "cards/vpc/verdict.h"

const uint8_t vpc_gateway_mac[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};
