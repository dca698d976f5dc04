package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// runUp runs the whole control plane under --dir: certificates, then etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler as child
// processes of this one (each this binary with its component's name),
// logs in <dir>/<component>.log. Once the API server is ready it prints
//
//	kubeconfig <dir>/pki/admin.kubeconfig
//	server https://<address>:<port>
//	etcd http://127.0.0.1:<port>
//	ready
//
// and stays in the foreground until SIGTERM or SIGINT, or until a
// component exits (then it stops the others and exits 1 naming it). The
// children die with it: each has a parent-death signal, so even a SIGKILL
// of this process leaves nothing running.
func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("dir", "", "where certificates, etcd's data and logs go (required)")
	serviceCIDR := fs.String("service-cidr", "10.96.0.0/16", "the Services' ClusterIP range")
	node := fs.String("node", "localkube-node", "the node's name (its client is system:node:<name>)")
	address := fs.String("address", "127.0.0.1", "where kube-apiserver listens and what it advertises as the kubernetes Service's endpoint (a loopback address gets that Service no endpoints: the API server refuses them)")
	nodeIP := fs.String("node-ip", "", "the node's InternalIP, in the kubelet's serving certificate (a real kubelet, scripts/node.sh, serves its API there)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "controlplane up: --dir is required")
		return 2
	}
	if err := up(*dir, *serviceCIDR, *node, *address, *nodeIP); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane up: %v\n", err)
		return 1
	}
	return 0
}

type child struct {
	name string
	cmd  *exec.Cmd
}

func freePort(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// firstIP is the range's first usable address, the kubernetes Service's.
func firstIP(cidr string) (string, error) {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("--service-cidr %q: %v", cidr, err)
	}
	v4 := ip.Mask(n.Mask).To4()
	if v4 == nil {
		return "", fmt.Errorf("--service-cidr %q: only IPv4 ranges", cidr)
	}
	v4[3]++
	return v4.String(), nil
}

func up(dir, serviceCIDR, node, address, nodeIP string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	serviceIP, err := firstIP(serviceCIDR)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	apiPort, err := freePort(address)
	if err != nil {
		return fmt.Errorf("no free port on %s: %v", address, err)
	}
	server := fmt.Sprintf("https://%s", net.JoinHostPort(address, fmt.Sprint(apiPort)))
	pki := filepath.Join(dir, "pki")
	if err := writeCerts(pki, server, node, serviceIP, address, nodeIP); err != nil {
		return fmt.Errorf("certificates: %v", err)
	}
	var children []child
	exited := make(chan string, 4)
	start := func(name string, args ...string) error {
		log, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		cmd := exec.Command(self, args...)
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			log.Close()
			return fmt.Errorf("%s: %v", name, err)
		}
		children = append(children, child{name, cmd})
		go func() {
			_ = cmd.Wait()
			log.Close()
			exited <- name
		}()
		return nil
	}
	stop := func() {
		for i := len(children) - 1; i >= 0; i-- {
			_ = children[i].cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, c := range children {
			// Signal 0 fails once the child is gone (and reaped).
			for syscall.Kill(c.cmd.Process.Pid, 0) == nil && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			_ = c.cmd.Process.Kill()
		}
	}
	fail := func(err error) error {
		stop()
		return err
	}
	// etcd's ports were free when picked and are bound only once its
	// process has started: another process on the machine may take one
	// in between, and etcd then exits. Such a start is tried again on
	// new ports, with a fresh data directory.
	var etcdURL string
	for attempt := 1; ; attempt++ {
		var peerURL string
		if etcdURL, peerURL, err = etcdURLs(); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "etcd.url"), []byte(etcdURL+"\n"), 0o644); err != nil {
			return fail(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
			return fail(err)
		}
		if err := start("etcd", "etcd", "--data-dir", filepath.Join(dir, "etcd"),
			"--listen-client", etcdURL, "--listen-peer", peerURL); err != nil {
			return fail(err)
		}
		err := waitEtcd(filepath.Join(dir, "etcd.log"), exited)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errExited) {
			return fail(fmt.Errorf("etcd did not start: %v (see %s)", err, filepath.Join(dir, "etcd.log")))
		}
		children = children[:len(children)-1]
		failed := filepath.Join(dir, fmt.Sprintf("etcd-attempt-%d.log", attempt))
		if err := os.Rename(filepath.Join(dir, "etcd.log"), failed); err != nil {
			return fail(err)
		}
	}
	if err := start("apiserver", "apiserver",
		"--etcd-servers", etcdURL,
		"--bind-address", address, "--secure-port", fmt.Sprint(apiPort),
		"--advertise-address", address,
		"--tls-cert-file", filepath.Join(pki, "apiserver.crt"),
		"--tls-private-key-file", filepath.Join(pki, "apiserver.key"),
		"--client-ca-file", filepath.Join(pki, "ca.crt"),
		"--service-account-key-file", filepath.Join(pki, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(pki, "sa.key"),
		"--service-account-issuer", server,
		"--service-cluster-ip-range", serviceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		"--allow-privileged",
		// The node's kubelet API (pod logs) at its InternalIP, checked
		// against the CA both ways.
		"--kubelet-preferred-address-types", "InternalIP",
		"--kubelet-certificate-authority", filepath.Join(pki, "ca.crt"),
		"--kubelet-client-certificate", filepath.Join(pki, "apiserver-kubelet-client.crt"),
		"--kubelet-client-key", filepath.Join(pki, "apiserver-kubelet-client.key"),
		"--cert-dir", filepath.Join(dir, "apiserver-certs"),
		// Secrets bypass the watch cache, so a compaction of etcd's
		// history is seen by their watches at once (410 Gone).
		"--watch-cache-sizes", "secrets#0"); err != nil {
		return fail(err)
	}
	if err := waitReady(server, pki, exited); err != nil {
		return fail(fmt.Errorf("kube-apiserver not ready: %v (see %s)", err, filepath.Join(dir, "apiserver.log")))
	}
	cm := filepath.Join(pki, "controller-manager.kubeconfig")
	if err := start("controller-manager", "controller-manager",
		"--kubeconfig", cm, "--authentication-kubeconfig", cm, "--authorization-kubeconfig", cm,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--use-service-account-credentials",
		"--service-account-private-key-file", filepath.Join(pki, "sa.key"),
		"--root-ca-file", filepath.Join(pki, "ca.crt"),
		"--cluster-signing-cert-file", filepath.Join(pki, "ca.crt"),
		"--cluster-signing-key-file", filepath.Join(pki, "ca.key"),
		"--service-cluster-ip-range", serviceCIDR,
		"--leader-elect=false",
		"--controllers", "*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller"); err != nil {
		return fail(err)
	}
	sc := filepath.Join(pki, "scheduler.kubeconfig")
	if err := start("scheduler", "scheduler",
		"--kubeconfig", sc, "--authentication-kubeconfig", sc, "--authorization-kubeconfig", sc,
		"--bind-address", "127.0.0.1", "--secure-port", "0", "--leader-elect=false"); err != nil {
		return fail(err)
	}
	fmt.Printf("kubeconfig %s\nserver %s\netcd %s\nready\n", filepath.Join(pki, "admin.kubeconfig"), server, etcdURL)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-signals:
		stop()
		return nil
	case name := <-exited:
		return fail(fmt.Errorf("%s exited (see %s)", name, filepath.Join(dir, name+".log")))
	}
}

// etcdURLs are etcd's client and peer URLs on two ports of loopback
// that were free when picked.
func etcdURLs() (client, peer string, err error) {
	var ports [2]int
	for i := range ports {
		if ports[i], err = freePort("127.0.0.1"); err != nil {
			return "", "", fmt.Errorf("no free port on 127.0.0.1: %v", err)
		}
	}
	return fmt.Sprintf("http://127.0.0.1:%d", ports[0]), fmt.Sprintf("http://127.0.0.1:%d", ports[1]), nil
}

var errExited = errors.New("exited")

// waitEtcd waits until etcd's log says it is ready: errExited when it
// exits first, an error after a minute.
func waitEtcd(log string, exited chan string) error {
	deadline := time.After(time.Minute)
	for {
		select {
		case name := <-exited:
			if name == "etcd" {
				return errExited
			}
			exited <- name
			return fmt.Errorf("%s exited", name)
		case <-deadline:
			return fmt.Errorf("not ready in a minute")
		case <-time.After(100 * time.Millisecond):
		}
		if text, err := os.ReadFile(log); err == nil && strings.Contains(string(text), "controlplane etcd: ready on") {
			return nil
		}
	}
}

// waitReady polls /readyz as the admin until it answers 200, a component
// exits, or a minute passes.
func waitReady(server, pki string, exited chan string) error {
	ca, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, "admin.crt"), filepath.Join(pki, "admin.key"))
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		select {
		case name := <-exited:
			exited <- name
			return fmt.Errorf("%s exited", name)
		case <-ctx.Done():
			return fmt.Errorf("no answer from %s/readyz in a minute", server)
		case <-time.After(250 * time.Millisecond):
		}
		resp, err := client.Get(server + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
}
