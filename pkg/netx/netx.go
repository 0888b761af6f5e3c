// Package netx finds free loopback ports for processes this program starts (a redis-server, a
// cluster's NATS nodes and services), whose addresses must be known before they bind them.
package netx

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

const (
	// portFloor is the lowest port FreePort draws: above the registered services that a
	// developer's machine commonly runs.
	portFloor = 20000
	// portTries bounds the draws before FreePort gives up.
	portTries = 200
	// ephemeralDefault is Linux's first ephemeral port unless configured otherwise.
	ephemeralDefault = 32768
)

// FreePort finds a free loopback port below the kernel's ephemeral range, drawn at random.
//
// A port the kernel hands out for port 0 comes from the ephemeral range, and it is free only
// for a moment: any outgoing connection on the machine, a NATS or Redis client's, may take it
// as its source port before the process meant for it binds it. Below that range only another
// listener can take it, and a random draw makes two starts at once unlikely to draw alike.
func FreePort() (int, error) {
	low := ephemeralLow()
	for range portTries {
		port := portFloor + rand.IntN(low-portFloor)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("netx: no free loopback port in %d-%d after %d tries", portFloor, low-1, portTries)
}

// FreeAddr is FreePort as a loopback address, 127.0.0.1:PORT.
func FreeAddr() (string, error) {
	port, err := FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// FreePorts draws n distinct free ports.
func FreePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	ports := make([]int, 0, n)
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ephemeralDefault
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return ephemeralDefault
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low < portFloor+1000 {
		return ephemeralDefault
	}
	return low
}
