// Command controlplane is kube-apiserver, kube-controller-manager,
// kube-scheduler and etcd in one binary, built from the upstream Go
// modules (k8s.io/kubernetes, go.etcd.io/etcd/server/v3), and the real
// node's kubelet and kube-proxy from the same module (scripts/node.sh):
// the first argument names the component, the rest are its own flags.
//
//	controlplane apiserver --etcd-servers=... (kube-apiserver's flags)
//	controlplane controller-manager ...
//	controlplane scheduler ...
//	controlplane kubelet --config FILE ... (the kubelet's flags)
//	controlplane proxy --config FILE (kube-proxy's flags)
//	controlplane etcd --data-dir DIR --listen-client URL --listen-peer URL
//	controlplane up --dir DIR [--service-cidr CIDR] [--node NAME]
//	controlplane certs --dir DIR --server URL [--node NAME]
//	controlplane compact --endpoint URL
//	controlplane version
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/version"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	component, args := os.Args[1], os.Args[2:]
	switch component {
	case "apiserver":
		cmd := apiserver.NewAPIServerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "controller-manager":
		cmd := controllermanager.NewControllerManagerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "scheduler":
		cmd := scheduler.NewSchedulerCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "kubelet":
		cmd := kubelet.NewKubeletCommand(context.Background())
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "proxy":
		cmd := proxy.NewProxyCommand()
		cmd.SetArgs(args)
		os.Exit(cli.Run(cmd))
	case "etcd":
		os.Exit(runEtcd(args))
	case "up":
		os.Exit(runUp(args))
	case "certs":
		os.Exit(runCerts(args))
	case "compact":
		os.Exit(runCompact(args))
	case "version":
		fmt.Println(version.Get().GitVersion)
	default:
		fmt.Fprintf(os.Stderr, "controlplane: no component %q\n", component)
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: controlplane up|apiserver|controller-manager|scheduler|kubelet|proxy|etcd|certs|compact|version [flags]")
}
