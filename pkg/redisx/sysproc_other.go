//go:build !unix

package redisx

import "syscall"

// sysProcAttr has nothing to add where there are no process groups nor a parent-death signal.
func sysProcAttr() *syscall.SysProcAttr { return nil }
