# The system tests (tests/system): real guests under nitro-hv, with cards and nitrod, in
# the emulated host.
.PHONY: system-test
system-test: all images $(BUILD)/guest/hostile-vq $(BUILD)/nvme-guest.img \
	$(BUILD)/ebsnvme-guest.img
	$(BUILD)/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider \
	    --ignore=tests/system/test_cloudinit.py tests/system
TEST_SUITES += system-test

# Guest-side helper of test_hostile.py (static: the guest image has no libc); it and
# hostile-nvme share tests/system/guest_pci.c (BAR 0 from sysfs, locked pages).
GUEST_CC = $(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE
GUEST_PCI = tests/system/guest_pci.c tests/system/guest_pci.h
$(BUILD)/guest/hostile-vq: tests/system/hostile_vq.c $(GUEST_PCI)
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(filter %.c,$^) -o $@

# Guest-side helper of test_nvme.py, and the test initramfs it runs in: the default guest
# image plus the NVMe modules, nvme-cli and fio from Debian (tests/system/nvme_initrd.sh).
$(BUILD)/guest/hostile-nvme: tests/system/hostile_nvme.c $(GUEST_PCI)
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(filter %.c,$^) -o $@
NVME_INITRD = tests/system/nvme_initrd.sh tests/system/initrd.sh
$(BUILD)/nvme-guest.img: images $(BUILD)/guest/hostile-nvme $(NVME_INITRD)
	OUT=$@ sh tests/system/nvme_initrd.sh $(BUILD)/guest/hostile-nvme=/bin/hostile-nvme

# test_controller.py's NVMe guest: the NVMe image plus a minimal Python 3 (the host's
# interpreter and the modules ebsnvme-id imports, tests/system/pyguest.py) and Debian's
# amazon-ec2-utils ebsnvme-id itself.
$(BUILD)/ebsnvme-guest.img: images $(NVME_INITRD) tests/system/pyguest.py
	OUT=$@ sh tests/system/nvme_initrd.sh \
	    $$(/usr/bin/python3 tests/system/pyguest.py /usr/sbin/ebsnvme-id /dev/null)

# Guest-side helper of test_vpc.py's resolver and time server test (busybox has no NTP
# client), and the initramfs it runs in: the default guest image plus /bin/sntp.
$(BUILD)/guest/sntp: tests/system/sntp.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -static -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@
$(BUILD)/vpc-guest.img: images $(BUILD)/guest/sntp tests/system/initrd.sh
	OUT=$@ sh tests/system/initrd.sh $(BUILD)/guest/sntp=/bin/sntp
system-test: $(BUILD)/vpc-guest.img

# The NVMe benchmark's guest (bench/nvme.py): the same image with Debian's fio in it, built
# here rather than inside the emulated host (80 MiB of libraries to pack).
bench: $(BUILD)/nvme-fio.img
$(BUILD)/nvme-fio.img: images $(NVME_INITRD)
	OUT=$@ WITH_FIO=1 sh tests/system/nvme_initrd.sh

# The Debian trixie cloud image of test_cloudinit.py (systemd, cloud-init, openssh-server,
# chrony; mmdebstrap from the Debian mirror), cached in ~/.cache/nitro/cloudimg by the
# script's own content and the kernel version: a no-op when cached. Built outside the
# emulated host (it needs the network and native speed).
# In `make test` (its own emulated host, after the image): two systemd + cloud-init boots,
# the second overlapping the first's checks: 5 min 32 s on a quiet machine, 12 min 10 s
# with load 7-9 on its 2 cores (docs/images.md). A fresh machine builds the image first (network).
.PHONY: cloud-image cloud-test
cloud-image: images
	sh tests/system/cloud_image.sh >/dev/null
cloud-test: all images cloud-image
	$(BUILD)/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/system/test_cloudinit.py
TEST_SUITES += cloud-test

# test_enclave_vm.py's enclave ramdisk: a static /init that prints a marker on ttyS0 and
# powers off (tests/system/enclave_marker_init.c), as a gzip'd cpio.
$(BUILD)/guest/enclave-marker-init: tests/system/enclave_marker_init.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $< -o $@
$(BUILD)/enclave-marker.cpio.gz: $(BUILD)/guest/enclave-marker-init
	rm -rf $@.d && mkdir -p $@.d/dev $@.d/proc && cp $< $@.d/init
	(cd $@.d && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -9n) > $@
	rm -rf $@.d
system-test: $(BUILD)/enclave-marker.cpio.gz
# test_ne.py's guest: the default image plus the raw-ioctl client of the Nitro Enclaves
# device (tests/system/ne_ioctl.c), its script, and the stock nitro_enclaves module (for a
# guest.img built before the default image loaded it).
$(BUILD)/guest/ne-ioctl: tests/system/ne_ioctl.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $< -o $@
$(BUILD)/ne-guest.img: images $(BUILD)/guest/ne-ioctl tests/system/ne_guest.sh tests/system/initrd.sh
	OUT=$@ sh tests/system/initrd.sh $(BUILD)/guest/ne-ioctl=/bin/ne-ioctl \
	    tests/system/ne_guest.sh=/bin/ne-guest \
	    ko:nitro_enclaves:drivers/virt/nitro_enclaves/=/lib/ne/nitro_enclaves.ko
system-test: $(BUILD)/ne-guest.img
