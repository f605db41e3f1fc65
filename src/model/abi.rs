//! The kernel's numbers that tw's readers, examples and fuzz targets share,
//! each declared once, with the header it comes from.

/// TCP_TIMEWAIT_LEN (include/net/tcp.h): how long TIME_WAIT lasts, in
/// seconds. Fixed at build time of the kernel, not a sysctl.
pub const TIME_WAIT_SECS: u64 = 60;

/// USER_HZ: the unit of /proc/net/tcp's `tm->when` (jiffies_to_clock_t).
pub const USER_HZ: u64 = 100;

// include/uapi/linux/netlink.h
/// sizeof(struct nlmsghdr).
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_REQUEST: u16 = 0x01;
/// Set on a dump's messages when the table changed while it was walked.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// NLM_F_ROOT | NLM_F_MATCH.
pub const NLM_F_DUMP: u16 = 0x300;

// include/uapi/linux/sock_diag.h, include/uapi/linux/inet_diag.h
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The legacy request and reply type. Its `struct inet_diag_req` may name no
/// family, and the kernel then walks the connection hash once for both
/// (inet_diag_dump_compat passes AF_UNSPEC on), where SOCK_DIAG_BY_FAMILY
/// walks it once per family. The replies carry the same `struct inet_diag_msg`.
pub const TCPDIAG_GETSOCK: u16 = 18;
/// sizeof(struct inet_diag_msg).
pub const INET_DIAG_MSG_LEN: usize = 72;
/// sizeof(struct inet_diag_sockid).
pub const INET_DIAG_SOCKID_LEN: usize = 48;
/// The request attribute carrying a filter program.
pub const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// INET_DIAG_BC_* (include/uapi/linux/inet_diag.h): the filter program's ops.
pub mod bc {
    pub const NOP: u8 = 0;
    pub const JMP: u8 = 1;
    pub const S_GE: u8 = 2;
    pub const S_LE: u8 = 3;
    pub const D_GE: u8 = 4;
    pub const D_LE: u8 = 5;
    pub const AUTO: u8 = 6;
    pub const S_COND: u8 = 7;
    pub const D_COND: u8 = 8;
    pub const DEV_COND: u8 = 9;
    pub const MARK_COND: u8 = 10;
}
