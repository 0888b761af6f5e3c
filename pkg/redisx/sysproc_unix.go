//go:build unix && !linux

package redisx

import "syscall"

// sysProcAttr puts redis-server in a process group of its own, so that a terminal's Ctrl-C reaches
// only its parent, which stops the child as it stops; only Linux offers a parent-death signal too.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
