package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// A client identity the control plane's parts and its users sign in as.
type identity struct {
	file  string
	cn    string
	orgs  []string
	users bool // a kubeconfig is written beside it
}

// runCerts writes, into --dir, a CA, the API server's serving certificate,
// client certificates and kubeconfigs for the admin, the controller
// manager, the scheduler and the node, and the service-account key pair.
// Everything is new on each call: nothing is downloaded or reused.
func runCerts(args []string) int {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", "", "where to write them (required)")
	server := fs.String("server", "", "the API server's URL, for the kubeconfigs (required)")
	node := fs.String("node", "localkube-node", "the node's name (its client is system:node:<name>)")
	serviceIP := fs.String("service-ip", "10.96.0.1", "the kubernetes Service's ClusterIP")
	address := fs.String("address", "127.0.0.1", "the API server's address")
	nodeIP := fs.String("node-ip", "", "the node's InternalIP, in the kubelet's serving certificate (a real kubelet serves its API there)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || *server == "" {
		fmt.Fprintln(os.Stderr, "controlplane certs: --dir and --server are required")
		return 2
	}
	if err := writeCerts(*dir, *server, *node, *serviceIP, *address, *nodeIP); err != nil {
		fmt.Fprintf(os.Stderr, "controlplane certs: %v\n", err)
		return 1
	}
	return 0
}

func writeCerts(dir, server, node, serviceIP, address, nodeIP string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	caTemplate := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "logbook-local-ca"},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePair(dir, "ca", caDER, caKey); err != nil {
		return err
	}
	ip := net.ParseIP(serviceIP)
	if ip == nil {
		return fmt.Errorf("--service-ip %q is not an IP address", serviceIP)
	}
	at := net.ParseIP(address)
	if at == nil {
		return fmt.Errorf("--address %q is not an IP address", address)
	}
	serving := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:    now,
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), ip, at},
	}
	if err := issue(dir, "apiserver", serving, ca, caKey); err != nil {
		return err
	}
	// The kubelet's serving certificate (its API: pod logs), at the
	// node's address; the API server checks it against the CA.
	kubelet := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}},
		NotBefore:    now,
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{node, "localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	if nodeIP != "" {
		ip := net.ParseIP(nodeIP)
		if ip == nil {
			return fmt.Errorf("--node-ip %q is not an IP address", nodeIP)
		}
		kubelet.IPAddresses = append(kubelet.IPAddresses, ip)
	}
	if err := issue(dir, "kubelet", kubelet, ca, caKey); err != nil {
		return err
	}
	// The identities below sign in with client certificates; the front
	// proxy is not used.
	for _, id := range []identity{
		{file: "admin", cn: "logbook-admin", orgs: []string{"system:masters"}, users: true},
		{file: "controller-manager", cn: "system:kube-controller-manager", users: true},
		{file: "scheduler", cn: "system:kube-scheduler", users: true},
		{file: "node", cn: "system:node:" + node, orgs: []string{"system:nodes"}, users: true},
		// The Service proxy: the default system:node-proxier binding names
		// this user.
		{file: "proxy", cn: "system:kube-proxy", users: true},
		// The API server's client to the kubelet (logs).
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
	} {
		client := &x509.Certificate{
			SerialNumber: serial(),
			Subject:      pkix.Name{CommonName: id.cn, Organization: id.orgs},
			NotBefore:    now,
			NotAfter:     now.Add(365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if err := issue(dir, id.file, client, ca, caKey); err != nil {
			return err
		}
		if id.users {
			if err := writeKubeconfig(dir, id.file, server); err != nil {
				return err
			}
		}
	}
	// The service-account token signer: RSA, as kube-apiserver expects.
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, "sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey), 0o600)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func issue(dir, name string, template, ca *x509.Certificate, caKey *ecdsa.PrivateKey) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writePair(dir, name, der, key)
}

func writePair(dir, name string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".key"), "EC PRIVATE KEY", keyDER, 0o600)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode)
}

func writeKubeconfig(dir, name, server string) error {
	read := func(file string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	cert, err := read(name + ".crt")
	if err != nil {
		return err
	}
	key, err := read(name + ".key")
	if err != nil {
		return err
	}
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: logbook-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: logbook-local
  context:
    cluster: logbook-local
    user: %s
current-context: logbook-local
`, server, ca, name, cert, key, name)
	return os.WriteFile(filepath.Join(dir, name+".kubeconfig"), []byte(text), 0o600)
}
