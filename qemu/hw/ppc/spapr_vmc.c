/*
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * QEMU sPAPR Virtual Management Channel (VMC) device
 *
 * The partition side of a PAPR VMC: the device tree node, the CRQ, the
 * two DMA windows and the hcalls the Linux ibmvmc driver makes. The
 * hypervisor side is an external process (openvmc-hvd) reached through a
 * socket chardev; it hands over its DMA window as a sealed memfd, which is
 * mapped here so that H_COPY_RDMA never waits for it. The message format
 * is openvmc's docs/guest-link.md.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/memfd.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "migration/vmstate.h"
#include "chardev/char-fe.h"
#include "hw/ppc/spapr.h"
#include "hw/ppc/spapr_vio.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "qom/object.h"

#ifndef H_REQUEST_VMC
#define H_REQUEST_VMC           0x360
#endif

/* openvmc's hypervisor refuses longer copies; so must the partition side */
#define VMC_MAX_RDMA_LEN        (128 * KiB)
#define VMC_WINDOW_SIZE         0x10000000

#define VMC_MSG_MAGIC           0x474d564f
#define VMC_MSG_VERSION         1
#define VMC_HDR_LEN             16
#define VMC_MAX_BODY            24

enum {
    VMC_MSG_HELLO = 1,
    VMC_MSG_WELCOME,
    VMC_MSG_CRQ_REG,
    VMC_MSG_CRQ_FREE,
    VMC_MSG_SEND,
    VMC_MSG_RDMA,
    VMC_MSG_HV_STATE,
    VMC_MSG_CREDIT,
    VMC_MSG_DELIVER,
    VMC_MSG_DELIVER_RC,
};

#define TYPE_VIO_SPAPR_VMC_DEVICE "spapr-vmc"
OBJECT_DECLARE_SIMPLE_TYPE(SpaprVioVmc, VIO_SPAPR_VMC_DEVICE)

struct SpaprVioVmc {
    SpaprVioDevice sdev;
    CharBackend chr;
    uint32_t drc_index;
    uint32_t hv_liobn;
    uint64_t hv_window_size;

    /* One message being received: header, then its body */
    uint8_t rx[VMC_HDR_LEN + VMC_MAX_BODY];
    uint32_t rx_len;
    int rx_fd;

    /* Valid from WELCOME until the link drops */
    bool linked;
    uint8_t *hv_window;
    uint32_t hv_queue_entries;

    /* Mirror of the hypervisor end, so that H_SEND_CRQ never waits */
    bool hv_open;
    uint32_t epoch;
    uint32_t credit;

    int32_t last_refusal;
    bool refused; /* on this connection: the daemon closes it next */
    uint64_t link_failures;
};

static SpaprVioVmc *vmc_find(SpaprMachineState *spapr)
{
    BusChild *kid;

    QTAILQ_FOREACH(kid, &spapr->vio_bus->bus.children, sibling) {
        Object *obj = object_dynamic_cast(OBJECT(kid->child),
                                          TYPE_VIO_SPAPR_VMC_DEVICE);
        if (obj) {
            return VIO_SPAPR_VMC_DEVICE(obj);
        }
    }
    return NULL;
}

static uint64_t vmc_local_window_size(SpaprVioVmc *s)
{
    SpaprTceTable *tcet = s->sdev.tcet;

    return (uint64_t)tcet->nb_table << tcet->page_shift;
}

static void vmc_link_failed(SpaprVioVmc *s, const char *why)
{
    s->link_failures++;
    /*
     * No rate limit needed: the link is closed at once, and the chardev's
     * reconnect delay bounds how often a bad daemon gets here.
     */
    error_report("spapr-vmc: %s; closing the link to the hypervisor "
                 "(%" PRIu64 " failures)", why, s->link_failures);
    qemu_chr_fe_disconnect(&s->chr);
}

/*
 * A short write would leave half a message in the stream and waiting would
 * let a stopped daemon freeze the guest: either way the link has failed.
 */
static bool vmc_send_msg(SpaprVioVmc *s, uint16_t type, uint32_t seq,
                         const void *body, uint32_t len)
{
    uint8_t buf[VMC_HDR_LEN + 48];

    assert(len <= sizeof(buf) - VMC_HDR_LEN);
    stl_he_p(buf, VMC_MSG_MAGIC);
    stw_he_p(buf + 4, VMC_MSG_VERSION);
    stw_he_p(buf + 6, type);
    stl_he_p(buf + 8, len);
    stl_he_p(buf + 12, seq);
    if (len) {
        memcpy(buf + VMC_HDR_LEN, body, len);
    }
    if (qemu_chr_fe_write(&s->chr, buf, VMC_HDR_LEN + len) !=
        VMC_HDR_LEN + len) {
        if (s->linked) {
            vmc_link_failed(s, "the hypervisor does not take messages");
        }
        return false;
    }
    return true;
}

static void vmc_send_hello(SpaprVioVmc *s)
{
    uint8_t b[32];

    stl_he_p(b, s->sdev.reg);
    stl_he_p(b + 4, s->sdev.tcet->liobn);
    stl_he_p(b + 8, s->drc_index);
    stl_he_p(b + 12, s->hv_liobn);
    stq_he_p(b + 16, vmc_local_window_size(s));
    stq_he_p(b + 24, s->hv_window_size);
    vmc_send_msg(s, VMC_MSG_HELLO, 0, b, sizeof(b));
}

static void vmc_send_crq_reg(SpaprVioVmc *s)
{
    uint8_t b[8] = { 0 };

    stl_he_p(b, s->sdev.crq.qsize / 16);
    vmc_send_msg(s, VMC_MSG_CRQ_REG, 0, b, sizeof(b));
}

static void vmc_crq_registered(SpaprVioDevice *dev)
{
    SpaprVioVmc *s = VIO_SPAPR_VMC_DEVICE(dev);

    if (s->linked) {
        vmc_send_crq_reg(s);
    }
}

static void vmc_crq_freed(SpaprVioDevice *dev)
{
    SpaprVioVmc *s = VIO_SPAPR_VMC_DEVICE(dev);

    if (s->linked) {
        vmc_send_msg(s, VMC_MSG_CRQ_FREE, 0, NULL, 0);
    }
}

/*
 * Write an entry into the guest's CRQ: 0 done, 1 queue full, else an error.
 * A transport event must reach the guest even when its queue is full, so
 * it replaces the newest entry, which the reset it causes discards anyway.
 */
static int vmc_push(SpaprVioVmc *s, uint8_t *entry)
{
    SpaprVioDevice *dev = &s->sdev;
    int ret = spapr_vio_send_crq(dev, entry);

    if (ret == 1 && entry[0] == 0xff) {
        uint32_t newest = (dev->crq.qnext + dev->crq.qsize - 16) %
                          dev->crq.qsize;

        ret = spapr_vio_dma_write(dev, dev->crq.qladdr + newest + 8,
                                  entry + 8, 8) ||
              spapr_vio_dma_write(dev, dev->crq.qladdr + newest, entry, 8);
        if (!ret && (dev->signal_state & 1)) {
            spapr_vio_irq_pulse(dev);
        }
    }
    return ret;
}

static void vmc_link_down(SpaprVioVmc *s)
{
    static uint8_t partner_failed[16] = { 0xff, 0x01 };
    bool was_linked = s->linked;

    s->linked = false;
    s->hv_open = false;
    s->credit = 0;
    s->rx_len = 0;
    s->refused = false;
    if (s->rx_fd >= 0) {
        close(s->rx_fd);
        s->rx_fd = -1;
    }
    if (s->hv_window) {
        munmap(s->hv_window, s->hv_window_size);
        s->hv_window = NULL;
    }
    if (was_linked && s->sdev.crq.qsize) {
        vmc_push(s, partner_failed);
    }
}

static bool vmc_welcome(SpaprVioVmc *s, const uint8_t *b)
{
    int32_t status = ldl_he_p(b);
    uint32_t entries = ldl_he_p(b + 8);
    uint32_t open = ldl_he_p(b + 12);
    int fd = s->rx_fd;
    struct stat st;
    int seals;
    void *p;

    if (status < 0) {
        if (fd >= 0) {
            return false;
        }
        if (status != s->last_refusal) {
            error_report("spapr-vmc: the hypervisor refused the VMC: %s",
                         strerror(-status));
            s->last_refusal = status;
        }
        s->refused = true;
        return true;
    }
    if (status > 0 || fd < 0 || open > 1 || ldl_he_p(b + 20) || !entries) {
        return false;
    }
    /*
     * The window must stay at least as large as it is mapped, or a
     * hostile daemon could shrink it and fault QEMU on the next copy.
     */
    seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK) || fstat(fd, &st) ||
        st.st_size < 0 || (uint64_t)st.st_size < s->hv_window_size) {
        return false;
    }
    p = mmap(NULL, s->hv_window_size, PROT_READ | PROT_WRITE, MAP_SHARED,
             fd, 0);
    if (p == MAP_FAILED) {
        return false;
    }
    close(fd);
    s->rx_fd = -1;
    s->hv_window = p;
    s->hv_queue_entries = entries;
    s->hv_open = open;
    s->epoch = ldl_he_p(b + 16);
    s->credit = open ? entries : 0;
    s->linked = true;
    s->last_refusal = 0;
    if (s->sdev.crq.qsize) {
        vmc_send_crq_reg(s);
    }
    return true;
}

static void vmc_deliver(SpaprVioVmc *s, uint32_t seq, uint8_t *entry)
{
    int64_t rc = H_CLOSED;
    uint8_t b[8];

    if (s->sdev.crq.qsize) {
        int ret = vmc_push(s, entry);

        rc = ret == 0 ? H_SUCCESS : ret == 1 ? H_DROPPED : H_CLOSED;
    }
    stq_he_p(b, rc);
    vmc_send_msg(s, VMC_MSG_DELIVER_RC, seq, b, sizeof(b));
}

static bool vmc_handle_msg(SpaprVioVmc *s, uint16_t type, uint32_t seq,
                           uint8_t *b)
{
    if (type == VMC_MSG_WELCOME) {
        return !s->linked && !s->refused && seq == 0 && vmc_welcome(s, b);
    }
    if (!s->linked || s->rx_fd >= 0) {
        return false;
    }
    switch (type) {
    case VMC_MSG_HV_STATE: {
        uint32_t open = ldl_he_p(b), credit = ldl_he_p(b + 8);

        if (seq || open > 1 || credit > s->hv_queue_entries ||
            ldl_he_p(b + 12)) {
            return false;
        }
        s->hv_open = open;
        s->epoch = ldl_he_p(b + 4);
        s->credit = open ? credit : 0;
        return true;
    }
    case VMC_MSG_CREDIT: {
        uint32_t n = ldl_he_p(b + 4);

        if (seq) {
            return false;
        }
        /* Credit of an epoch that has ended is stale, not an error */
        if (ldl_he_p(b) != s->epoch || !s->hv_open) {
            return true;
        }
        if (n > s->hv_queue_entries - s->credit) {
            return false;
        }
        s->credit += n;
        return true;
    }
    case VMC_MSG_DELIVER:
        if (!(b[0] & 0x80)) {
            return false;
        }
        vmc_deliver(s, seq, b);
        return true;
    }
    return false;
}

static uint32_t vmc_body_len(uint16_t type)
{
    switch (type) {
    case VMC_MSG_WELCOME:
        return 24;
    case VMC_MSG_HV_STATE:
    case VMC_MSG_DELIVER:
        return 16;
    case VMC_MSG_CREDIT:
        return 8;
    }
    return UINT32_MAX;
}

static int vmc_can_receive(void *opaque)
{
    SpaprVioVmc *s = opaque;
    uint32_t want = VMC_HDR_LEN;

    /* Never read past the message: its descriptor must not go astray */
    if (s->rx_len >= VMC_HDR_LEN) {
        uint32_t body = ldl_he_p(s->rx + 8);

        if (body > VMC_MAX_BODY) {
            return 0;
        }
        want += body;
    }
    return want - s->rx_len;
}

static void vmc_receive(void *opaque, const uint8_t *buf, int size)
{
    SpaprVioVmc *s = opaque;
    int fd = qemu_chr_fe_get_msgfd(&s->chr);
    uint16_t type;

    if (fd >= 0) {
        if (s->rx_fd >= 0 || s->linked) {
            close(fd);
            vmc_link_failed(s, "unexpected descriptor from the hypervisor");
            return;
        }
        s->rx_fd = fd;
    }
    if (size <= 0 || size > vmc_can_receive(s)) {
        return;
    }
    memcpy(s->rx + s->rx_len, buf, size);
    s->rx_len += size;
    if (s->rx_len < VMC_HDR_LEN) {
        return;
    }
    type = lduw_he_p(s->rx + 6);
    if (s->rx_len == VMC_HDR_LEN) {
        if (ldl_he_p(s->rx) != VMC_MSG_MAGIC ||
            lduw_he_p(s->rx + 4) != VMC_MSG_VERSION ||
            ldl_he_p(s->rx + 8) != vmc_body_len(type)) {
            vmc_link_failed(s, "malformed message header from the hypervisor");
            return;
        }
    }
    if (vmc_can_receive(s)) {
        return;
    }
    s->rx_len = 0;
    if (!vmc_handle_msg(s, type, ldl_he_p(s->rx + 12), s->rx + VMC_HDR_LEN)) {
        vmc_link_failed(s, "invalid message from the hypervisor");
    }
}

static void vmc_event(void *opaque, QEMUChrEvent event)
{
    SpaprVioVmc *s = opaque;

    switch (event) {
    case CHR_EVENT_OPENED:
        vmc_link_down(s);
        vmc_send_hello(s);
        break;
    case CHR_EVENT_CLOSED:
        vmc_link_down(s);
        break;
    default:
        break;
    }
}

static int vmc_send_crq(SpaprVioDevice *dev, uint8_t *crq)
{
    SpaprVioVmc *s = VIO_SPAPR_VMC_DEVICE(dev);
    uint8_t b[24] = { 0 };

    /* Transport events are the hypervisor's to send, never the guest's */
    if (!(crq[0] & 0x80) || crq[0] == 0xff) {
        return H_PARAMETER;
    }
    if (!s->linked || !dev->crq.qsize || !s->hv_open) {
        return H_CLOSED;
    }
    if (!s->credit) {
        return H_DROPPED;
    }
    stl_he_p(b, s->epoch);
    memcpy(b + 8, crq, 16);
    if (!vmc_send_msg(s, VMC_MSG_SEND, 0, b, sizeof(b))) {
        return H_CLOSED;
    }
    s->credit--;
    return H_SUCCESS;
}

/*
 * One window of the two: the device's own, translated through its TCE
 * table, or the hypervisor's, usable only while both ends are up.
 */
static target_ulong vmc_window_check(SpaprVioVmc *s, uint64_t liobn,
                                      uint64_t ioba, uint64_t len,
                                      DMADirection dir, bool *hv,
                                      target_ulong bad)
{
    uint64_t size;

    if (liobn == s->sdev.tcet->liobn) {
        size = vmc_local_window_size(s);
        *hv = false;
    } else if (liobn == s->hv_liobn) {
        if (!s->hv_window) {
            return H_CLOSED;
        }
        if (!s->sdev.crq.qsize || !s->hv_open) {
            return bad;
        }
        size = s->hv_window_size;
        *hv = true;
    } else {
        return bad;
    }
    if (ioba > size || len > size - ioba) {
        return bad;
    }
    /* Every page mapped, and writable when written to */
    if (!*hv && !spapr_vio_dma_valid(&s->sdev, ioba, len, dir)) {
        return bad;
    }
    return H_SUCCESS;
}

static target_ulong vmc_copy(SpaprVioVmc *s, uint64_t len,
                             uint64_t src_liobn, uint64_t src_ioba,
                             uint64_t dst_liobn, uint64_t dst_ioba)
{
    bool src_hv, dst_hv;
    target_ulong rc;

    if (len > VMC_MAX_RDMA_LEN) {
        return H_PARAMETER;
    }
    rc = vmc_window_check(s, src_liobn, src_ioba, len,
                          DMA_DIRECTION_TO_DEVICE, &src_hv, H_SOURCE_PARM);
    if (rc != H_SUCCESS) {
        return rc;
    }
    rc = vmc_window_check(s, dst_liobn, dst_ioba, len,
                          DMA_DIRECTION_FROM_DEVICE, &dst_hv, H_DEST_PARM);
    if (rc != H_SUCCESS) {
        return rc;
    }
    /* A copy moves data between the partition and the hypervisor */
    if (src_hv == dst_hv) {
        return H_DEST_PARM;
    }
    if (dst_hv) {
        if (spapr_vio_dma_read(&s->sdev, src_ioba, s->hv_window + dst_ioba,
                               len)) {
            return H_SOURCE_PARM;
        }
    } else if (spapr_vio_dma_write(&s->sdev, dst_ioba,
                                   s->hv_window + src_ioba, len)) {
        return H_DEST_PARM;
    }
    return H_SUCCESS;
}

static target_ulong h_copy_rdma(PowerPCCPU *cpu, SpaprMachineState *spapr,
                                target_ulong opcode, target_ulong *args)
{
    SpaprVioVmc *s = vmc_find(spapr);
    target_ulong rc;
    uint8_t b[48];

    if (!s) {
        return H_FUNCTION;
    }
    rc = vmc_copy(s, args[0], args[1], args[2], args[3], args[4]);
    if (s->linked) {
        stq_he_p(b, (int64_t)rc);
        for (int i = 0; i < 5; i++) {
            stq_he_p(b + 8 + 8 * i, args[i]);
        }
        vmc_send_msg(s, VMC_MSG_RDMA, 0, b, sizeof(b));
    }
    return rc;
}

static target_ulong h_request_vmc(PowerPCCPU *cpu, SpaprMachineState *spapr,
                                  target_ulong opcode, target_ulong *args)
{
    SpaprVioVmc *s = vmc_find(spapr);

    if (!s) {
        return H_FUNCTION;
    }
    args[0] = s->drc_index;
    return H_SUCCESS;
}

static int spapr_vmc_devnode(SpaprVioDevice *dev, void *fdt, int node_off)
{
    SpaprVioVmc *s = VIO_SPAPR_VMC_DEVICE(dev);
    uint64_t local = vmc_local_window_size(s);
    uint32_t win[10] = {
        cpu_to_be32(dev->tcet->liobn), 0, 0,
        cpu_to_be32(local >> 32), cpu_to_be32(local),
        cpu_to_be32(s->hv_liobn), 0, 0,
        cpu_to_be32(s->hv_window_size >> 32), cpu_to_be32(s->hv_window_size),
    };

    /* The VIO code wrote the first window with two cells per number */
    return fdt_setprop(fdt, node_off, "ibm,my-dma-window", win, sizeof(win));
}

static void spapr_vmc_realize(SpaprVioDevice *sdev, Error **errp)
{
    SpaprVioVmc *s = VIO_SPAPR_VMC_DEVICE(sdev);
    SpaprMachineState *spapr = SPAPR_MACHINE(qdev_get_machine());

    if (vmc_find(spapr) != s) {
        error_setg(errp, "a partition has at most one spapr-vmc device");
        return;
    }
    if (!qemu_chr_fe_backend_connected(&s->chr)) {
        error_setg(errp, "spapr-vmc needs a chardev (the hypervisor)");
        return;
    }
    if (!s->hv_liobn) {
        s->hv_liobn = sdev->tcet->liobn | 0x80000000;
    }
    if (s->hv_liobn == sdev->tcet->liobn ||
        spapr_tce_find_by_liobn(s->hv_liobn)) {
        error_setg(errp, "hv-liobn 0x%x is already in use", s->hv_liobn);
        return;
    }
    if (!s->hv_window_size || s->hv_window_size % qemu_real_host_page_size()) {
        error_setg(errp, "hv-window-size must be a multiple of the host "
                   "page size");
        return;
    }
    s->rx_fd = -1;
    sdev->crq.SendFunc = vmc_send_crq;
    qemu_chr_fe_set_handlers(&s->chr, vmc_can_receive, vmc_receive,
                             vmc_event, NULL, s, NULL, true);
}

static Property spapr_vmc_properties[] = {
    DEFINE_SPAPR_PROPERTIES(SpaprVioVmc, sdev),
    DEFINE_PROP_CHR("chardev", SpaprVioVmc, chr),
    DEFINE_PROP_UINT32("drc-index", SpaprVioVmc, drc_index, 0x90000001),
    DEFINE_PROP_UINT32("hv-liobn", SpaprVioVmc, hv_liobn, 0),
    DEFINE_PROP_SIZE("hv-window-size", SpaprVioVmc, hv_window_size,
                     16 * MiB),
    DEFINE_PROP_END_OF_LIST(),
};

static const VMStateDescription vmstate_spapr_vmc = {
    .name = "spapr_vmc",
    /* Reason: the hypervisor's state lives in another process */
    .unmigratable = 1,
};

static void spapr_vmc_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    SpaprVioDeviceClass *k = VIO_SPAPR_DEVICE_CLASS(klass);

    k->realize = spapr_vmc_realize;
    k->devnode = spapr_vmc_devnode;
    k->crq_registered = vmc_crq_registered;
    k->crq_freed = vmc_crq_freed;
    k->dt_name = "ibm,vmc";
    k->dt_type = "ibm,vmc";
    k->dt_compatible = "IBM,vmc";
    k->signal_mask = 0x00000001;
    k->rtce_window_size = VMC_WINDOW_SIZE;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, spapr_vmc_properties);
    dc->vmsd = &vmstate_spapr_vmc;
}

static const TypeInfo spapr_vmc_info = {
    .name          = TYPE_VIO_SPAPR_VMC_DEVICE,
    .parent        = TYPE_VIO_SPAPR_DEVICE,
    .instance_size = sizeof(SpaprVioVmc),
    .class_init    = spapr_vmc_class_init,
};

static void spapr_vmc_register_types(void)
{
    spapr_register_hypercall(H_COPY_RDMA, h_copy_rdma);
    spapr_register_hypercall(H_REQUEST_VMC, h_request_vmc);
    type_register_static(&spapr_vmc_info);
}

type_init(spapr_vmc_register_types)
