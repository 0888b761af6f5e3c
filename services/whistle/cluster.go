package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/spf13/cobra"

	"github.com/whistle-dispatch/whistle/services/whistle/internal/cluster"
	"github.com/whistle-dispatch/whistle/services/whistle/internal/system"
)

// defaultClusterDir is where whistle cluster keeps its processes' files and its state.
const defaultClusterDir = "./whistle-cluster"

// natsNodeReady bounds how long a NATS node may take to accept clients.
const natsNodeReady = 30 * time.Second

// defaultClusterBasePort numbers the cluster's ports (see the help of cluster up).
const defaultClusterBasePort = 17000

// clusterCommand runs Whistle on this machine as in production, each part a process of its own.
func clusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local cluster: three NATS nodes, a Redis Cluster with replicas, two processes of each service",
	}
	var dir, catalogPath, rulesPath, rosterPath string
	var base, replicas int
	up := &cobra.Command{
		Use:   "up",
		Short: "Start the local cluster in the background and return once it is ready",
		Long: "Start, each as a process of its own that runs after this command returns: three NATS servers\n" +
			"clustered with JetStream (this program's embedded server, as whistle nats-node), the streams at\n" +
			"three replicas; a Redis Cluster of three masters each with a replica, every service with a Redis\n" +
			"user limited to its own keys; and --replicas processes of each service (whistle serve NAME), each\n" +
			"with its own NATS and Redis user. Ports count from --base-port: NATS clients +1..+3, NATS routes\n" +
			"+11..+13, NATS monitoring +21..+23, Redis +31..+36 (buses +41..+46), the services' gRPC +101.. and\n" +
			"HTTP +201.., in the order intake, routing, department, escalation, replica by replica, and the\n" +
			"gateways (whistle serve gateway, the console and Open311, --replicas of them) +301... What runs,\n" +
			"with its pid, ports and passwords, is in DIR/" + cluster.StateFile + "; whistle cluster down stops it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("cluster up: find this program: %w", err)
			}
			for _, p := range []*string{&catalogPath, &rulesPath, &rosterPath} {
				if *p != "" {
					if *p, err = filepath.Abs(*p); err != nil {
						return err
					}
				}
			}
			st, err := cluster.Up(cmd.Context(), cluster.Options{Dir: dir, Binary: bin, BasePort: base, Replicas: replicas,
				CatalogPath: catalogPath, RulesPath: rulesPath, RosterPath: rosterPath, Logger: newLogger(cmd.ErrOrStderr())})
			if err != nil {
				return err
			}
			printCluster(cmd, st)
			return nil
		},
	}
	up.Flags().StringVar(&dir, "dir", defaultClusterDir, "the cluster folder: every process's files and logs, and what runs")
	up.Flags().IntVar(&base, "base-port", defaultClusterBasePort, "the ports are numbered from this one; 0 takes free ports")
	up.Flags().IntVar(&replicas, "replicas", cluster.DefaultReplicas, "processes of each service")
	up.Flags().StringVar(&catalogPath, "catalog", "", "the city's catalog file; default: the sample city")
	up.Flags().StringVar(&rulesPath, "rules", "", "routing's rules file; default: the sample city's rules")
	up.Flags().StringVar(&rosterPath, "roster", "", "the units' duty rosters file; default: the sample city's with the sample catalog, none with another")

	down := &cobra.Command{
		Use:   "down",
		Short: "Stop every process of the local cluster (SIGTERM, then SIGKILL after a while); the files stay",
		Long: "Stop every process of the local cluster, the services first, with SIGTERM and, past 15 s, SIGKILL.\n" +
			"The files stay for their logs and data; remove the folder before the next whistle cluster up.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cluster.Down(dir, newLogger(cmd.ErrOrStderr())); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "the cluster in %s is down\n", dir)
			return nil
		},
	}
	down.Flags().StringVar(&dir, "dir", defaultClusterDir, "the cluster folder")
	cmd.AddCommand(up, down)
	return cmd
}

// printCluster says where the cluster's parts listen and how to reach them.
func printCluster(cmd *cobra.Command, st *cluster.State) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "the cluster is up, files in %s\n", st.Dir)
	fmt.Fprintf(out, "  NATS      %s\n", st.NATSURL)
	var redisAddrs []string
	for _, p := range st.Redis {
		redisAddrs = append(redisAddrs, p.Addr)
	}
	fmt.Fprintf(out, "  Redis     %s (user default: password in %s)\n", strings.Join(redisAddrs, " "), filepath.Join(st.Dir, cluster.StateFile))
	for _, name := range system.Names {
		var addrs []string
		for _, p := range st.Services {
			if p.Role == name {
				addrs = append(addrs, p.Addr+" (http "+p.Peer+")")
			}
		}
		fmt.Fprintf(out, "  %-10s %s\n", name, strings.Join(addrs, ", "))
	}
	var consoles []string
	for _, addr := range st.ServiceAddrs(system.GatewayName) {
		consoles = append(consoles, "http://"+addr+system.ConsolePath)
	}
	fmt.Fprintf(out, "  %-10s %s (the console; Open311 at %s)\n", system.GatewayName, strings.Join(consoles, ", "), system.Open311Path)
	fmt.Fprintf(out, "Mint a token: whistle token --data %s --role supervisor --scope city\n", st.DataDir)
	fmt.Fprintf(out, "Stop it: whistle cluster down --dir %s\n", st.Dir)
}

// natsNodeCommand runs one NATS server from a config file, with the nats-server package this
// program embeds, so that a local cluster's nodes are the same server as whistle up's and need
// nothing installed. It stops on SIGTERM or Ctrl-C.
func natsNodeCommand() *cobra.Command {
	var config string
	cmd := &cobra.Command{
		Use:    "nats-node --config FILE",
		Short:  "Run one NATS server from a nats-server config file (a node of whistle cluster)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := server.ProcessConfigFile(config)
			if err != nil {
				return fmt.Errorf("nats-node: %w", err)
			}
			opts.NoSigs = true // this command stops on its context, which carries the signals
			s, err := server.NewServer(opts)
			if err != nil {
				return fmt.Errorf("nats-node: %w", err)
			}
			s.ConfigureLogger()
			s.Start()
			if !s.ReadyForConnections(natsNodeReady) {
				s.Shutdown()
				return errors.New("nats-node: the server did not become ready")
			}
			<-cmd.Context().Done()
			s.Shutdown()
			s.WaitForShutdown()
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "the nats-server config file")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// redisUsersCommand prints each service's Redis user, as an operator's Redis should define it.
func redisUsersCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "redis-users",
		Short: "Print each service's Redis ACL user: its own keys and the commands it needs",
		Long: "Print one line per service: the user as redis-server's user directive takes it, with PASSWORD\n" +
			"where its password goes (ACL SETUSER takes the same words after the name). Give each whistle serve\n" +
			"its user in WHISTLE_REDIS_URL: redis://NAME:PASSWORD@host:port.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range system.RedisUsers() {
				if _, err := fmt.Fprintln(cmd.OutOrStdout(), system.RedisUserLine(name, "PASSWORD")); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
