//! Giving freed heap memory back to the system after a start.
//!
//! A restore of many bans allocates a lot for a moment: the loaded rows (on the store's
//! thread), the firewall's plans and netlink messages (on its thread), the engine's batches.
//! glibc's allocator keeps what is freed in the arena of the thread that allocated it and
//! returns only the top of each heap to the system, so after restoring 100,000 bans about
//! 15–20 MB of freed pages stayed resident (benches/memory.rs: 47–50 MB of anonymous memory
//! instead of 30–35). Smaller batches and tables sized up front were not enough; so after the
//! restore the free pages of every arena are handed back once with `malloc_trim(0)`.

/// Return the free pages of every malloc arena to the system (glibc; nothing elsewhere).
pub(super) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own arenas under their locks; it
        // takes no pointer and frees nothing that is in use.
        #[allow(unsafe_code)]
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
