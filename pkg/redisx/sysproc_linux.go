package redisx

import "syscall"

// sysProcAttr asks the kernel to send SIGTERM to redis-server when its parent dies, so a
// crashed test or `whistle up` does not leave a server holding a port. The signal is tied
// to the OS thread that started the child; Go keeps such threads alive in practice.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
