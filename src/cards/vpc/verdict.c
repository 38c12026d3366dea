/* The drop verdict and the gateway MAC, shared by the pipeline's pieces (verdict.h). */
#include "cards/vpc/verdict.h"

#include "cards/vpc/core.h"

const uint8_t vpc_gateway_mac[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};

enum vpc_action vpc_drop(struct vpc_port *p, struct vpc_out *out, enum vpc_drop r)
{
	p->p_st.st_drops[r]++;
	out->vo_drop = r;
	out->vo_data = NULL;
	out->vo_len = 0;
	return VPC_DROP;
}
