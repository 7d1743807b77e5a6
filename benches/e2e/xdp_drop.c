// Receiver-side sink for the end-to-end benchmark: drops every frame in XDP so that the
// receiving namespace's stack costs nothing and the switch is the bottleneck. The veth's
// rx counter still counts each frame the switch delivered.
// No headers: the program only needs XDP_DROP's value (enum xdp_action in linux/bpf.h).
#define XDP_DROP 1

struct xdp_md;

__attribute__((section("xdp"), used)) int xdp_drop(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_DROP;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
