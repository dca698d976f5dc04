// kube-network-policies for the real node (docs/node.md): the NetworkPolicy
// engine of kind (sigs.k8s.io/kube-network-policies), its controller run as
// its cmd/main.go runs it, with three differences the node needs:
//
//   - its credentials: upstream reads a pod's service-account token
//     (rest.InClusterConfig); the node's daemons sign in with client
//     certificates of the control plane's CA, and this one signs in as
//     kube-proxy does (--kubeconfig; every node has that kubeconfig). With
//     --bind-with ADMIN_KUBECONFIG (the first node has one) it first makes
//     the ClusterRole logbook:network-policies, reading exactly what the
//     controller watches (Pods, Namespaces, NetworkPolicies), and binds it
//     to that user; until the binding exists its watches are refused and
//     retried;
//
//   - no NRI: the node's containerd runs without it (scripts/node.sh), so
//     pod addresses come from the API server only. The controller is left
//     to try NRI all the same (its socket is absent: it logs "nri plugin
//     exited" and goes on): with NRIdisabled, v0.8.0 dereferences its nil
//     NRI plugin on the first packet from an address no pod holds (the
//     host's end of the link, the cluster DNS) and dies;
//
//   - the hook: upstream sends the first packet of each connection of a
//     policed pod to the nfqueue with nftables' `queue` statement, which
//     this kernel lacks (CONFIG_NFT_QUEUE is not set: the controller's
//     nftables batch fails with "no such file or directory" and is
//     retried, harmlessly). The same packets reach the same queue through
//     iptables' NFQUEUE target (CONFIG_NETFILTER_XT_TARGET_NFQUEUE), in
//     the mangle table's POSTROUTING (before SNAT, as upstream's chain):
//     every new connection from or to the node's pod range, but root's own
//     (the kubelet's probes). The controller decides each one exactly as
//     upstream does; a pod no policy selects is let through.
//
// Usage:
//
//	kube-network-policies --kubeconfig FILE [--bind-with ADMIN_KUBECONFIG] \
//	    --hostname-override NODE --pod-cidr CIDR [--metrics-bind-address ADDR]
package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

// The engine's ClusterRole and its binding.
const role = "logbook:network-policies"

func main() {
	os.Exit(run())
}

func run() int {
	kubeconfig := flag.String("kubeconfig", "", "the identity the engine signs in as (a client certificate)")
	bindWith := flag.String("bind-with", "", "an admin kubeconfig: bind the engine's ClusterRole to its user first")
	node := flag.String("hostname-override", "", "the name of the Node the engine runs on")
	metrics := flag.String("metrics-bind-address", "127.0.0.1:9080", "where to serve /metrics")
	queueID := flag.Int("nfqueue-id", 100, "the nfqueue the packets of policed pods are sent to")
	podCIDR := flag.String("pod-cidr", "", "the node's pod range: new connections from or to it are decided by the engine")
	klog.InitFlags(nil)
	flag.Parse()
	if *kubeconfig == "" || *node == "" || *podCIDR == "" {
		fmt.Fprintln(os.Stderr, "kube-network-policies: --kubeconfig, --hostname-override and --pod-cidr are required")
		return 2
	}
	if _, _, err := net.ParseCIDR(*podCIDR); err != nil {
		fmt.Fprintf(os.Stderr, "kube-network-policies: --pod-cidr %q: %v\n", *podCIDR, err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer cancel()

	config, err := identity(ctx, *kubeconfig, *bindWith)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube-network-policies: %v\n", err)
		return 1
	}
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.ContentType = "application/vnd.kubernetes.protobuf"
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube-network-policies: client: %v\n", err)
		return 1
	}
	factory := informers.NewSharedInformerFactory(clientset, 0)
	controller, err := networkpolicy.NewController(
		clientset,
		factory.Networking().V1().NetworkPolicies(),
		factory.Core().V1().Namespaces(),
		factory.Core().V1().Pods(),
		nil, nil, nil, nil,
		networkpolicy.Config{
			QueueID:  *queueID,
			NodeName: *node,
			// Not NRIdisabled: see above.
			// The kernel here is 6.12+: conntrack's DNS race is fixed.
			NetfilterBug1766Fix: false,
		},
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kube-network-policies: controller: %v\n", err)
		return 1
	}
	http.Handle("/metrics", promhttp.Handler())
	go func() {
		utilruntime.HandleError(http.ListenAndServe(*metrics, nil))
	}()
	go func() {
		utilruntime.HandleError(controller.Run(ctx))
	}()
	factory.Start(ctx.Done())
	// The hook once the controller knows the cluster (its queue is bound
	// just after): no bypass, so a packet the engine cannot decide is
	// dropped, as upstream's default (no --fail-open).
	factory.WaitForCacheSync(ctx.Done())
	time.Sleep(time.Second)
	if err := hook(*podCIDR, *queueID); err != nil {
		fmt.Fprintf(os.Stderr, "kube-network-policies: %v\n", err)
		return 1
	}
	defer unhook()
	<-ctx.Done()
	// The controller removes its nftables table on the way out.
	time.Sleep(2 * time.Second)
	return 0
}

// The chain sending new connections to the queue.
const chain = "LOGBOOK-NETWORK-POLICIES"

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "-t", "mangle"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// hook sends the first packet of every connection from or to cidr, but
// root's own, to the queue.
func hook(cidr string, queue int) error {
	_ = iptables("-N", chain)
	if err := iptables("-F", chain); err != nil {
		return err
	}
	q := strconv.Itoa(queue)
	for _, rule := range [][]string{
		{"-m", "owner", "--uid-owner", "0", "-j", "RETURN"},
		{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		{"-s", cidr, "-j", "NFQUEUE", "--queue-num", q},
		{"-d", cidr, "-j", "NFQUEUE", "--queue-num", q},
	} {
		if err := iptables(append([]string{"-A", chain}, rule...)...); err != nil {
			return err
		}
	}
	if iptables("-C", "POSTROUTING", "-j", chain) != nil {
		return iptables("-I", "POSTROUTING", "-j", chain)
	}
	return nil
}

func unhook() {
	_ = iptables("-D", "POSTROUTING", "-j", chain)
	_ = iptables("-F", chain)
	_ = iptables("-X", chain)
}

// identity reads the engine's client configuration and, with an admin
// kubeconfig, binds the engine's ClusterRole to the user it names (its
// client certificate's common name).
func identity(ctx context.Context, kubeconfig, admin string) (*rest.Config, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	if admin == "" {
		return config, nil
	}
	certPEM := config.CertData
	if len(certPEM) == 0 && config.CertFile != "" {
		if certPEM, err = os.ReadFile(config.CertFile); err != nil {
			return nil, err
		}
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, fmt.Errorf("kubeconfig %s: no client certificate (the engine's user is its common name)", kubeconfig)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: client certificate: %w", kubeconfig, err)
	}
	adminConfig, err := clientcmd.BuildConfigFromFlags("", admin)
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig %s: %w", admin, err)
	}
	if err := bindRole(ctx, adminConfig, cert.Subject.CommonName); err != nil {
		return nil, err
	}
	return config, nil
}

// bindRole makes (or updates) the ClusterRole reading what the controller
// watches, and binds it to user.
func bindRole(ctx context.Context, admin *rest.Config, user string) error {
	client, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	read := []string{"get", "list", "watch"}
	clusterRole := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces"}, Verbs: read},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: read},
		},
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	var last error
	// The API server may still be starting when the node is.
	for attempt := 0; attempt < 60; attempt++ {
		last = apply(ctx, client, clusterRole, binding)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("binding the ClusterRole %s to %s: %w", role, user, last)
}

func apply(ctx context.Context, client *kubernetes.Clientset, clusterRole *rbacv1.ClusterRole, binding *rbacv1.ClusterRoleBinding) error {
	roles := client.RbacV1().ClusterRoles()
	if _, err := roles.Create(ctx, clusterRole, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		old, err := roles.Get(ctx, clusterRole.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		old.Rules = clusterRole.Rules
		if _, err := roles.Update(ctx, old, metav1.UpdateOptions{}); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	bindings := client.RbacV1().ClusterRoleBindings()
	if _, err := bindings.Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}
