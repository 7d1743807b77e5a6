//! Keeping every thread that is not a PMD off the PMD cores.
//!
//! A PMD busy-polls its core and owns it; any other thread the scheduler puts there (the
//! non-PMD thread, the revalidator, upcall handlers, the control server) takes time from
//! the PMD: measured with the core shared, a PMD that had the daemon's other threads
//! beside it got a smaller share than OVS's. The daemon narrows its own CPU mask to the
//! non-PMD cores before it starts any thread, so every thread it creates inherits that
//! mask, and each PMD thread then pins itself to its own core.

use std::sync::OnceLock;

use thiserror::Error;

/// The process's cores before `keep_off_pmd_cores` narrowed the mask.
static USABLE_BEFORE_NARROWING: OnceLock<Vec<usize>> = OnceLock::new();

/// The cores PMD threads may be pinned to: the process's mask as it was before
/// `keep_off_pmd_cores` took the PMD cores out of it (else the calling thread's mask).
pub fn usable_cores() -> Vec<usize> {
    match USABLE_BEFORE_NARROWING.get() {
        Some(c) => c.clone(),
        None => current_cores().unwrap_or_default(),
    }
}

/// Why the process's CPU mask was left as it was.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AffinityError {
    /// `sched_getaffinity` / `sched_setaffinity` failed.
    #[error("{call} failed: {err}")]
    Syscall {
        /// Which call.
        call: &'static str,
        /// errno text.
        err: String,
    },
    /// The PMD cores are every core the process may run on.
    #[error("pmd_cores {pmd:?} cover every usable core {usable:?}: other threads share them")]
    NoSpareCore {
        /// Configured PMD cores.
        pmd: Vec<usize>,
        /// Cores the process may use.
        usable: Vec<usize>,
    },
}

/// The cores the calling thread may run on.
pub fn current_cores() -> Result<Vec<usize>, AffinityError> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a writable cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if r != 0 {
        return Err(AffinityError::Syscall {
            call: "sched_getaffinity",
            err: std::io::Error::last_os_error().to_string(),
        });
    }
    let max = 8 * std::mem::size_of_val(&set);
    // SAFETY: CPU_ISSET reads the set within its size.
    Ok((0..max)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Restricts the calling thread (and so every thread it creates afterwards) to the cores
/// it may use now minus `pmd_cores`. Returns the cores left for non-PMD threads.
pub fn keep_off_pmd_cores(pmd_cores: &[usize]) -> Result<Vec<usize>, AffinityError> {
    let usable = current_cores()?;
    let rest: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|c| !pmd_cores.contains(c))
        .collect();
    if pmd_cores.is_empty() || rest.len() == usable.len() {
        return Ok(usable);
    }
    if rest.is_empty() {
        return Err(AffinityError::NoSpareCore {
            pmd: pmd_cores.to_vec(),
            usable,
        });
    }
    // SAFETY: as in `current_cores`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in &rest {
        // SAFETY: `c` came from CPU_ISSET over this set type, so it is in range.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if r != 0 {
        return Err(AffinityError::Syscall {
            call: "sched_setaffinity",
            err: std::io::Error::last_os_error().to_string(),
        });
    }
    let _ = USABLE_BEFORE_NARROWING.set(usable);
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_leaves_the_pmd_cores_and_its_children_inherit() {
        // In a thread of its own, so the test harness's threads keep their mask.
        std::thread::spawn(|| {
            let usable = current_cores().unwrap();
            assert!(!usable.is_empty());
            if usable.len() < 2 {
                // One usable core: there is nowhere else to go, which is an error.
                let e = keep_off_pmd_cores(&usable).unwrap_err();
                assert!(matches!(e, AffinityError::NoSpareCore { .. }), "{e}");
                return;
            }
            let pmd = usable[usable.len() - 1];
            let rest = keep_off_pmd_cores(&[pmd]).unwrap();
            assert!(!rest.contains(&pmd));
            assert_eq!(usable_cores(), usable, "PMDs may still use every core");
            assert_eq!(rest.len(), usable.len() - 1);
            assert_eq!(current_cores().unwrap(), rest);
            let child = std::thread::spawn(|| current_cores().unwrap())
                .join()
                .unwrap();
            assert_eq!(child, rest, "a thread created afterwards inherits the mask");
            // Every usable core a PMD core: refused, mask unchanged.
            let e = keep_off_pmd_cores(&rest).unwrap_err();
            assert!(matches!(e, AffinityError::NoSpareCore { .. }), "{e}");
            assert_eq!(current_cores().unwrap(), rest);
            // No PMD cores, or cores outside the mask: nothing to do.
            assert_eq!(keep_off_pmd_cores(&[]).unwrap(), rest);
            assert_eq!(keep_off_pmd_cores(&[pmd]).unwrap(), rest);
        })
        .join()
        .unwrap();
    }
}
