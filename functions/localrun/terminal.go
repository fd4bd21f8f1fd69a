package localrun

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// TakeTerminal puts this process in a process group of its own and makes it
// the terminal's foreground group, when it runs in the foreground of a
// terminal, so that a Ctrl-C interrupts it (and what it runs in its group,
// such as go build) but not its parent. Under make run the parent is make,
// and a make that gets a Ctrl-C dies of it once its recipe has ended, so
// that even a clean stop would not exit 0. giveBack returns the terminal to
// the group it was taken from: call it before exiting. Without a terminal,
// or in the background, TakeTerminal changes nothing.
//
// Ctrl-Z is ignored from then on: it would stop this process alone, holding
// the terminal, where the shell cannot resume it.
func TakeTerminal() (giveBack func()) {
	nothing := func() {}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nothing // no terminal
	}
	fd := int(tty.Fd())
	fg, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	if err != nil || fg != unix.Getpgrp() {
		_ = tty.Close() // in the background: the terminal is not ours to take
		return nothing
	}
	// Setting the foreground group from a background group raises SIGTTOU,
	// which would stop the process.
	signal.Ignore(unix.SIGTTOU, unix.SIGTSTP)
	if err := unix.Setpgid(0, 0); err != nil {
		_ = tty.Close() // a session leader: it keeps its group
		return nothing
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, unix.Getpgrp()); err != nil {
		// Back to the foreground group, or no Ctrl-C would reach it.
		_ = unix.Setpgid(0, fg)
		_ = tty.Close()
		return nothing
	}
	return func() {
		_ = unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, fg)
		_ = tty.Close()
	}
}
