//! nftables backend (in progress)
