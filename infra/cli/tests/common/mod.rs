//! What the `sluice` command's tests share: the binary run as a user runs it, against this test binary's moto, and
//! a pseudo-terminal to see it as a person at a terminal does.
#![allow(dead_code)] // each test binary uses what it needs

use std::process::{Command, Output};

use anyhow::Result;
use sluice_integration::{moto, workspace_root};

/// Runs `sluice args...` from the workspace root, with AWS pointed at this binary's moto and nothing else inherited.
pub fn sluice(args: &[&str]) -> Output {
    sluice_with(args, &[])
}

/// As [`sluice`], with more environment variables (`AWS_ENDPOINT_URL_ECS`, say).
pub fn sluice_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("the sluice binary runs")
}

/// `sluice args...` from the workspace root, with AWS pointed at this binary's moto, `env`, and nothing else.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .current_dir(workspace_root())
        .env_clear()
        .env("AWS_ENDPOINT_URL", &moto().endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .envs(env.iter().copied());
    command
}

/// `sluice args...` (as [`sluice_with`]) whose stdout and stderr are a terminal: a pseudo-terminal whose other end
/// this test reads, so it sees what a person at a terminal sees, escapes and all.
pub struct OnATerminal {
    child: std::process::Child,
    screen: std::thread::JoinHandle<Vec<u8>>,
    /// Set once the command has exited: the screen's reader stops when nothing more is there to read, even if a
    /// process started meanwhile (moto, by another test) inherited the terminal before it was closed on exec.
    exited: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The terminal's keyboard: what is written here, the command reads on stdin (when started `typing`).
    keyboard: std::fs::File,
}

impl OnATerminal {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::open(args, env, false)
    }

    /// As [`OnATerminal::start`], with stdin the terminal too: a person answers at its prompts ([`Self::types`]).
    pub fn typing(args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::open(args, env, true)
    }

    /// Types `line` and Enter.
    pub fn types(&mut self, line: &str) -> Result<()> {
        use std::io::Write;
        self.keyboard.write_all(format!("{line}\n").as_bytes())?;
        Ok(())
    }

    fn open(args: &[&str], env: &[(&str, &str)], typing: bool) -> Result<Self> {
        use std::io::Read;
        use std::os::fd::{FromRawFd, OwnedFd};
        let (mut ours, mut theirs) = (0, 0);
        // SAFETY: openpty writes two descriptors it opened into the two integers, and reads no name, termios or size.
        let opened =
            unsafe { libc::openpty(&mut ours, &mut theirs, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
        anyhow::ensure!(opened == 0, "openpty: {}", std::io::Error::last_os_error());
        // openpty's descriptors are inherited by every process started from here on (moto, if this test starts it,
        // or another test's command), which would hold the terminal open after the command ends: close them on exec.
        for fd in [ours, theirs] {
            // SAFETY: fcntl on a descriptor openpty just opened.
            anyhow::ensure!(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == 0, "fcntl");
        }
        if typing {
            // What the person types is not echoed: the screen is what the command wrote, whenever the keys come.
            // SAFETY: termios is plain data that tcgetattr fills in, on a descriptor openpty just opened.
            let mut termios: libc::termios = unsafe { std::mem::zeroed() };
            anyhow::ensure!(unsafe { libc::tcgetattr(theirs, &mut termios) } == 0, "tcgetattr");
            termios.c_lflag &= !(libc::ECHO | libc::ECHONL);
            // SAFETY: as above; termios is the terminal's own settings, less echo.
            anyhow::ensure!(unsafe { libc::tcsetattr(theirs, libc::TCSANOW, &termios) } == 0, "tcsetattr");
        }
        // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
        let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(ours), OwnedFd::from_raw_fd(theirs)) };
        let child = {
            // A terminal says what it is, as every terminal emulator does (progress is drawn on none that does not).
            let mut command = command(&[], &[("TERM", "xterm-256color")]);
            command.args(args).envs(env.iter().copied());
            let stdin = if typing { theirs.try_clone()?.into() } else { std::process::Stdio::null() };
            command.stdin(stdin).stdout(theirs.try_clone()?).stderr(theirs);
            command.spawn()?
            // The command, and with it this end of the terminal, is dropped here: the child holds the only copies,
            // so reading ends when it exits.
        };
        let keyboard = std::fs::File::from(ours.try_clone()?);
        let mut screen = std::fs::File::from(ours);
        let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let done = std::sync::Arc::clone(&exited);
        let screen = std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let mut seen = Vec::new();
            let mut chunk = [0; 4096];
            loop {
                let mut ready = libc::pollfd { fd: screen.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: one pollfd, on a descriptor this thread owns.
                let polled = unsafe { libc::poll(&mut ready, 1, 100) };
                if polled == 0 {
                    if done.load(std::sync::atomic::Ordering::SeqCst) {
                        break;
                    }
                    continue;
                }
                // Linux answers EIO once the other end is closed.
                match screen.read(&mut chunk) {
                    Ok(read @ 1..) => seen.extend_from_slice(&chunk[..read]),
                    _ => break,
                }
            }
            seen
        });
        Ok(Self { child, screen, keyboard, exited })
    }

    /// Its exit code, and all it wrote.
    pub fn finish(mut self) -> Result<(Option<i32>, String)> {
        let status = self.child.wait()?;
        self.exited.store(true, std::sync::atomic::Ordering::SeqCst);
        let screen = self.screen.join().map_err(|_| anyhow::anyhow!("the terminal's reader panicked"))?;
        Ok((status.code(), String::from_utf8_lossy(&screen).into_owned()))
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
