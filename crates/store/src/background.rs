//! Bulk work yields the CPU to people waiting on an answer.
//!
//! During a big outage two kinds of work want the same cores at once: the fan-out
//! rendering, packing and writing a notice for every customer (a batch of thousands, whose
//! budget is seconds), and the status page and customers' own pages those notices send
//! people to (one answer each, whose budget is milliseconds). The threads doing the bulk
//! work lower their own CPU priority by [`BACKGROUND_NICE`], so the scheduler serves the
//! pages first and gives the fan-out whatever they leave: an idle machine runs the fan-out
//! at full speed, a busy one still gives it a share (on Linux, a thread at nice 10 gets
//! about a tenth of a contended core; nothing starves).
//!
//! Only threads spawned for the bulk work itself are lowered, never a shared one (a tokio
//! worker, a blocking-pool thread): an unprivileged thread cannot raise its priority back.

/// How much lower than the process's own priority the bulk work's threads run.
pub const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority by [`BACKGROUND_NICE`]; call it first thing in
/// a thread spawned for bulk work. Elsewhere than Linux (where the nice value is per
/// thread) it does nothing.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
        unsafe {
            let me = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let now = libc::getpriority(libc::PRIO_PROCESS, me);
            // -1 is a valid priority: only errno tells a failure, and then nothing changes.
            if now != -1 || *libc::__errno_location() == 0 {
                libc::setpriority(libc::PRIO_PROCESS, me, (now + BACKGROUND_NICE).min(19));
            }
        }
    }
}

/// Runs `work`, bulk work of tens of milliseconds called from async code, without holding
/// up the other tasks of the tokio worker it runs on (a page being served): on a
/// multi-threaded runtime they move to another worker meanwhile. Elsewhere it just runs.
pub fn without_holding_the_runtime<R>(work: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: as above.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn only_the_calling_thread_is_lowered() {
        let before = std::thread::spawn(nice_of_this_thread).join().unwrap();
        let lowered = std::thread::spawn(|| {
            lower_this_thread();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, (before + BACKGROUND_NICE).min(19));
        let after = std::thread::spawn(nice_of_this_thread).join().unwrap();
        assert_eq!(after, before, "another thread keeps its priority");
    }
}

#[cfg(test)]
mod runtime_tests {
    use super::without_holding_the_runtime;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn bulk_work_on_a_multi_threaded_runtime_lets_other_tasks_run_meanwhile() {
        // On the one worker: bulk work that waits for another task of the runtime to run,
        // which it can only if the bulk work does not hold the worker.
        let bulk = tokio::spawn(async {
            let (done, finished) = std::sync::mpsc::channel::<()>();
            tokio::spawn(async move {
                let _ = done.send(());
            });
            without_holding_the_runtime(|| finished.recv_timeout(std::time::Duration::from_secs(10)))
        });
        assert!(bulk.await.unwrap().is_ok(), "another task ran while the bulk work ran");
    }

    #[tokio::test]
    async fn on_a_current_thread_runtime_it_simply_runs() {
        assert_eq!(without_holding_the_runtime(|| 6 * 7), 42);
    }

    #[test]
    fn outside_a_runtime_it_simply_runs() {
        assert_eq!(without_holding_the_runtime(|| "ran"), "ran");
    }
}
