package redisx

import "syscall"

// sysProcAttr puts redis-server in a process group of its own, so that a terminal's Ctrl-C (sent
// to the whole foreground group) reaches only its parent, which stops the child as it stops, rather
// than the child dying first and being restarted during the stop. It also asks the kernel to send
// SIGTERM to redis-server when its parent dies, so a crashed test or `whistle up` does not leave a
// server holding a port. That signal is tied to the OS thread that started the child; Go keeps
// such threads alive in practice.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
