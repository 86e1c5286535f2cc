//! The `amends` binary: parse the command line and hand over to the library.

/// The fan-out, the import and the delivery record allocate millions of short strings
/// from several threads at once; glibc's allocator spent a fifth of the fan-out's time
/// in its own bookkeeping, mimalloc's thread-local heaps a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    amends::cli::main()
}
