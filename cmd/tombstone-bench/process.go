package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a server the suite runs as a child (Tombstone or PgBouncer)
// and pgbench connects to on host:port.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	addr    string // host:port it listens on
	exited  chan struct{}
}

// startProcess starts cmd with its output in logPath and waits until addr
// accepts connections.
func startProcess(ctx context.Context, name string, cmd *exec.Cmd, addr, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, addr: addr, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%s exited before listening on %s:\n%s", name, addr, tail(string(log), 20))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s does not listen on %s after 30s: %v (log %s)", name, addr, err, logPath)
		}
	}
}

// endpoint is where pgbench reaches this process.
func (p *process) endpoint(proxied bool) endpoint {
	host, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return endpoint{name: p.name, host: host, port: n, proxied: proxied, proc: p}
}

// alive reports an error when the process has exited, so a crash mid-run is
// reported as such rather than as a pgbench connection failure.
func (p *process) alive() error {
	select {
	case <-p.exited:
		log, _ := os.ReadFile(p.logPath)
		return fmt.Errorf("%s exited (%v):\n%s", p.name, p.cmd.ProcessState, tail(string(log), 20))
	default:
		return nil
	}
}

// rssKiB is the process's resident set size from /proc/PID/status.
func (p *process) rssKiB() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read %s memory: %w", p.name, err)
	}
	kib := procField(strings.ReplaceAll(string(data), " kB", ""), "VmRSS:")
	if kib == 0 {
		return 0, errors.New("no VmRSS line in /proc status (not Linux?)")
	}
	return kib, nil
}

// counters are cumulative kernel counters of a process. reads and writes
// are its read(2)- and write(2)-family calls (/proc/PID/io, all threads,
// including reads that found nothing and returned EAGAIN); switches are the
// context switches of its threads (/proc/PID/task/*/status): each is a
// thread going to sleep or being preempted, so it counts wake-ups. cpu is
// its user plus system CPU time (/proc/PID/stat).
type counters struct {
	reads, writes, switches int64
	cpu                     time.Duration
}

func (c counters) minus(o counters) counters {
	return counters{c.reads - o.reads, c.writes - o.writes, c.switches - o.switches, c.cpu - o.cpu}
}

func (c counters) plus(o counters) counters {
	return counters{c.reads + o.reads, c.writes + o.writes, c.switches + o.switches, c.cpu + o.cpu}
}

// clockTick is the unit of /proc/PID/stat's CPU times: USER_HZ, which
// Linux fixes at 100 for user space on every architecture.
const clockTick = 10 * time.Millisecond

func (p *process) counters() (counters, error) {
	var c counters
	dir := fmt.Sprintf("/proc/%d", p.cmd.Process.Pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return c, fmt.Errorf("read %s CPU time: %w", p.name, err)
	}
	// Fields after the parenthesised command name start at field 3; utime
	// and stime are fields 14 and 15.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return c, fmt.Errorf("%s: /proc stat has %d fields after the name, want at least 13", p.name, len(f))
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	c.cpu = time.Duration(utime+stime) * clockTick
	io, err := os.ReadFile(dir + "/io")
	if err != nil {
		return c, fmt.Errorf("read %s I/O counters: %w", p.name, err)
	}
	c.reads = procField(string(io), "syscr:")
	c.writes = procField(string(io), "syscw:")
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		return c, fmt.Errorf("list %s threads: %w", p.name, err)
	}
	for _, t := range tasks {
		st, err := os.ReadFile(dir + "/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread has exited
		}
		c.switches += procField(string(st), "voluntary_ctxt_switches:") + procField(string(st), "nonvoluntary_ctxt_switches:")
	}
	return c, nil
}

// procField is the integer after key at the start of a line of a /proc
// file, 0 when absent.
func procField(text, key string) int64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// stop asks the process to shut down (SIGTERM) and kills it after 10s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
