//! Reading input files: every reader stops at its limit, whatever the file's length says. A
//! device or a pipe (`/dev/zero`, a FIFO, `<(command)`) reports a length of 0 and may never end;
//! reading it whole ran forever and filled memory.

use crate::Scratch;
use flushfuzz::harness::{self, load_file, LoadError, MAX_INPUT};
use std::io::Write as _;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// How long a read that should stop at its limit may take before the test calls it endless.
const DEADLINE: Duration = Duration::from_secs(60);

/// A FIFO at `path` with a writer that sends zeros until its reader goes away.
fn endless_fifo(path: &Path) -> std::thread::JoinHandle<()> {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        // Opening blocks until a reader opens the other end.
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let zeros = [0u8; 1 << 16];
        while w.write_all(&zeros).is_ok() {}
    })
}

/// `f()`, or a failure if it has not returned within [`DEADLINE`].
fn within_deadline<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} did not stop reading at its limit"))
}

/// Protects `flushfuzz replay /dev/zero` (and every command that loads an input) from running
/// forever: the length of a device is 0, and the read must stop past the limit.
#[test]
fn endless_device_is_refused_at_the_limit() {
    let e = within_deadline("load_file(/dev/zero)", || {
        load_file(Path::new("/dev/zero"), None).unwrap_err()
    });
    assert!(
        matches!(e, LoadError::TooLarge(n) if n == MAX_INPUT + 1),
        "{e}"
    );
    assert!(e.to_string().contains("larger than any input"), "{e}");
    let e = harness::read_at_most(Path::new("/dev/zero"), 10).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
}

/// As above for a FIFO whose writer never stops.
#[test]
fn endless_fifo_is_refused_at_the_limit() {
    let s = Scratch::new("fifo");
    let fifo = s.0.join("endless");
    let writer = endless_fifo(&fifo);
    let e = within_deadline("load_file(FIFO)", move || {
        load_file(&fifo, None).unwrap_err()
    });
    assert!(matches!(e, LoadError::TooLarge(_)), "{e}");
    // The reader closed its end: the writer's next write fails and it stops.
    writer.join().unwrap();
}

/// A file of exactly the limit is read whole; one byte more is refused, whatever the length
/// its metadata gives.
#[test]
fn the_limit_is_exact() {
    let s = Scratch::new("limit");
    let p = s.0.join("f");
    std::fs::write(&p, [7u8; 100]).unwrap();
    assert_eq!(harness::read_at_most(&p, 100).unwrap(), vec![7u8; 100]);
    assert_eq!(
        harness::read_at_most(&p, 99).unwrap_err().kind(),
        std::io::ErrorKind::FileTooLarge
    );
    std::fs::write(&p, vec![0x55; MAX_INPUT as usize + 1]).unwrap();
    assert!(matches!(
        load_file(&p, None),
        Err(LoadError::TooLarge(n)) if n == MAX_INPUT + 1
    ));
}

/// Runs the tool and returns its exit code and standard error, failing if it has not exited
/// within [`DEADLINE`].
#[cfg(feature = "cli")]
fn flushfuzz(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flushfuzz"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while child.try_wait().unwrap().is_none() {
        if waited >= DEADLINE {
            let _ = child.kill();
            panic!("flushfuzz {args:?} did not stop reading at its limit");
        }
        std::thread::sleep(step);
        waited += step;
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The commands that read inputs say which file is too large and exit with 2.
#[cfg(feature = "cli")]
#[test]
fn commands_refuse_endless_and_oversized_inputs_with_exit_code_2() {
    let s = Scratch::new("cli");
    let zero = std::ffi::OsStr::new("/dev/zero");
    for cmd in ["replay", "minimize"] {
        let (code, err) = flushfuzz(&[cmd.as_ref(), zero]);
        assert_eq!(code, Some(2), "{cmd}: {err}");
        assert!(
            err.contains("/dev/zero") && err.contains("larger than any input"),
            "{cmd}: {err}"
        );
    }
    let fifo = s.0.join("endless");
    let writer = endless_fifo(&fifo);
    let (code, err) = flushfuzz(&["replay".as_ref(), fifo.as_os_str()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("larger than any input"), "{err}");
    writer.join().unwrap();

    // `corpus --check` reads the reproducers the trace-parser seeds are made of.
    let crashes = s.0.join("crashes");
    std::fs::create_dir_all(&crashes).unwrap();
    let huge = crashes.join("huge.trace");
    std::fs::write(&huge, vec![b'#'; MAX_INPUT as usize + 1]).unwrap();
    let out = s.0.join("corpus");
    let (code, err) = flushfuzz(&[
        "corpus".as_ref(),
        "--check".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--crashes".as_ref(),
        crashes.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("huge.trace") && err.contains(&format!("more than {MAX_INPUT} bytes")),
        "{err}"
    );
}
