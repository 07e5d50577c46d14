// The stock vCenter simulator: govmomi's VPX model exactly as the library ships it, nothing changed
// (no launcher fixes, no instrumentation) -- what govmomi's own vcsim command serves by default: one
// datacenter, a standalone host, cluster DC0_C0 of 3 hosts (2 cores, 2 threads, 4 GiB each), and
// powered-on VMs. The balancer's tests run against it to show it needs nothing of the launcher's.
//
// Usage: vcsim-stock -port N; prints the SDK URL on its first line, stops on SIGTERM/SIGINT.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free port)")
	flag.Parse()

	m := simulator.VPX()
	if err := m.Create(); err != nil {
		log.Fatalf("creating the simulated inventory: %s", err)
	}
	defer m.Remove()

	// user / pass, as govmomi's vcsim command accepts by default
	m.Service.Listen = &url.URL{Host: fmt.Sprintf("127.0.0.1:%d", *port), User: url.UserPassword("user", "pass")}
	srv := m.Service.NewServer()
	u := *srv.URL
	u.User = nil
	fmt.Println(u.String())
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	srv.Close()
}
