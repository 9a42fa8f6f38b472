/*
 * MiniHdfs: a real HDFS (Hadoop's MiniDFSCluster, one DataNode) driven over stdin/stdout, for
 * modelswarm's tests and benches (test/hdfs/mini-hdfs.ts is the TypeScript side).
 *
 * Usage: java --add-opens java.base/java.lang=ALL-UNNAMED --add-opens java.base/java.util=ALL-UNNAMED
 *          --add-opens java.base/java.nio=ALL-UNNAMED -cp BASE_DIR/conf:CLASSPATH dev.modelswarm.hdfs.MiniHdfs BASE_DIR
 *          [--ha] [--host ADDR] [--https KEYSTORE.p12 PASSWORD_FILE] [--kerberos]
 *
 * Without --ha: one NameNode. With --ha: an HA pair (simpleHATopology), NN0 made active. Every port is
 * chosen by the OS (0). Hadoop's logs go to stderr; stdout carries only the protocol below.
 * With --host ADDR the HTTP servers and the DataNode listen on every address and the DataNode registers as
 * ADDR, so WebHDFS redirects point at ADDR (the network lab runs the cluster in a namespace whose address is
 * ADDR); without it everything stays on 127.0.0.1.
 * With --https the NameNode and DataNode web servers speak HTTPS only (dfs.http.policy=HTTPS_ONLY) with the
 * PKCS12 key store given (its certificate must name localhost and 127.0.0.1); Hadoop reads the store from
 * ssl-server.xml, a class path resource, which is written to BASE_DIR/conf: that directory must be on the
 * class path. With --kerberos (needs --https) a MiniKdc starts first and the cluster is secured as in
 * Hadoop's SaslDataTransferTestCase: Kerberos RPC, SPNEGO on WebHDFS (HTTP/localhost), block access tokens
 * and SASL data transfer instead of privileged DataNode ports. The launcher logs in as hdfs/localhost (the
 * superuser) for its own commands. WebHDFS addresses are then https://localhost:PORT, the host name the
 * SPNEGO principal names.
 *
 * Protocol, one JSON object per line on stdout:
 *   when ready:  {"ready":true,"ha":BOOL,"namenodes":["http://HOST:PORT",...],"active":N}  (HOST: ADDR or 127.0.0.1)
 *                with --kerberos also "kerberos":{"realm","kdcHost","kdcPort","principal","keytab",
 *                "passwordPrincipal","password"}: a client principal with a keytab, and one with a password (kinit)
 *                (WebHDFS http addresses in NameNode order; "active" is the active NN's index)
 * Then one command per line on stdin, each answered by exactly one line, either
 *   {"ok":true,...} or {"ok":false,"error":"MESSAGE"}. Arguments are separated by spaces (no spaces in paths).
 *   status                          -> "namenodes", "up" (booleans), "active" (-1 when none)
 *   failover FROM TO                -> FROM to standby (skipped if down), TO to active; "active":TO
 *   shutdown-nn N                   -> stop NameNode N (its port then refuses connections)
 *   restart-nn N                    -> restart NameNode N on the same ports (in HA it comes back standby)
 *   write PATH SIZE SEED [BLOCK]    -> create PATH (replication 1, block size BLOCK, default 128 MiB) holding
 *                                      SIZE bytes of the content stream below; "size", "millis"
 *   mkdir PATH | touch PATH | delete PATH (recursive) | chmod PATH OCTAL
 *   truncate PATH LENGTH            -> cut PATH to LENGTH bytes; "done" is false while block recovery runs
 *                                      (a LENGTH on a block boundary completes at once)
 *   stop                            -> answer, shut the cluster down, exit 0
 * On stdin EOF the cluster is shut down too, so a test runner that dies never leaves a JVM behind.
 *
 * Content stream for (SEED): 32-bit little-endian words, word i = fmix32((i * 0x9E3779B9) ^ fmix32(SEED ^ 0x5BD1E995)),
 * all arithmetic mod 2^32 (fmix32 is MurmurHash3's finalizer). Counter-based, so any byte range can be
 * regenerated without the bytes before it; mini-hdfs-content.ts implements the same function.
 */
package dev.modelswarm.hdfs;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.minikdc.MiniKdc;
import org.apache.hadoop.security.UserGroupInformation;

public final class MiniHdfs {
  private static final long DEFAULT_BLOCK = 128L << 20;

  private final MiniDFSCluster cluster;
  private final boolean ha;
  private final String[] webAddresses;
  private int active = 0;

  private MiniHdfs(MiniDFSCluster cluster, boolean ha, String host, boolean https) {
    this.cluster = cluster;
    this.ha = ha;
    this.webAddresses = new String[cluster.getNumNameNodes()];
    for (int i = 0; i < webAddresses.length; i++) {
      InetSocketAddress web = https ? cluster.getNameNode(i).getHttpsAddress() : cluster.getNameNode(i).getHttpAddress();
      webAddresses[i] = (https ? "https://" : "http://") + host + ":" + web.getPort();
    }
  }

  public static void main(String[] args) throws Exception {
    // Hadoop and its libraries print to System.out in places; keep stdout for the protocol only.
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
    System.setOut(System.err);
    if (args.length < 1) throw new IllegalArgumentException("usage: MiniHdfs BASE_DIR [--ha] [--host ADDR]");
    boolean ha = false;
    boolean kerberos = false;
    String host = null;
    String keystore = null;
    String keystorePasswordFile = null;
    for (int i = 1; i < args.length; i++) {
      if (args[i].equals("--ha")) ha = true;
      else if (args[i].equals("--host") && i + 1 < args.length) host = args[++i];
      else if (args[i].equals("--https") && i + 2 < args.length) {
        keystore = args[++i];
        keystorePasswordFile = args[++i];
      } else if (args[i].equals("--kerberos")) kerberos = true;
      else throw new IllegalArgumentException("unknown argument " + args[i]);
    }
    if (kerberos && keystore == null) throw new IllegalArgumentException("--kerberos needs --https: a secured DataNode without privileged ports needs HTTPS_ONLY");

    Configuration conf = new Configuration();
    conf.setBoolean("dfs.webhdfs.enabled", true);
    conf.setBoolean("dfs.permissions.enabled", true);
    // Lets GETDELEGATIONTOKEN issue tokens on this insecure cluster, so the client's delegation= path runs.
    conf.setBoolean("dfs.namenode.delegation.token.always-use", true);
    // Tests write files with 1 MiB blocks to cross block boundaries cheaply (the default minimum is 1 MiB too).
    conf.setLong("dfs.namenode.fs-limits.min-block-size", 1L << 20);
    MiniDFSCluster.Builder builder = new MiniDFSCluster.Builder(conf, new File(args[0])).numDataNodes(1);
    if (host != null) {
      // MiniDFSCluster pins every address to 127.0.0.1 unless told to keep the configured ones.
      conf.set("dfs.namenode.http-bind-host", "0.0.0.0");
      conf.set("dfs.datanode.address", "0.0.0.0:0");
      conf.set("dfs.datanode.http.address", "0.0.0.0:0");
      conf.set("dfs.datanode.ipc.address", "0.0.0.0:0");
      conf.set("dfs.datanode.hostname", host);
      builder.checkDataNodeAddrConfig(true).checkDataNodeHostConfig(true);
    }
    if (ha) builder.nnTopology(MiniDFSNNTopology.simpleHATopology());
    if (keystore != null) {
      String password = new String(java.nio.file.Files.readAllBytes(new File(keystorePasswordFile).toPath()), StandardCharsets.UTF_8).trim();
      enableHttps(conf, new File(args[0], "conf"), keystore, password);
    }
    MiniKdc kdc = null;
    String kerberosJson = "";
    if (kerberos) {
      kdc = new MiniKdc(MiniKdc.createConf(), new File(args[0], "kdc"));
      kdc.start();
      kerberosJson = ",\"kerberos\":" + secure(conf, kdc, new File(args[0], "kdc"));
    }
    MiniDFSCluster cluster = builder.build();
    if (ha) cluster.transitionToActive(0);
    cluster.waitActive();

    MiniHdfs hdfs = new MiniHdfs(cluster, ha, kerberos ? "localhost" : host == null ? "127.0.0.1" : host, keystore != null);
    // SIGTERM/SIGINT: still stop the daemons and delete BASE_DIR. stop/EOF shut down directly (quieter).
    final MiniKdc kdcToStop = kdc;
    Thread hook = new Thread(() -> {
      cluster.shutdown(true);
      if (kdcToStop != null) kdcToStop.stop();
    });
    Runtime.getRuntime().addShutdownHook(hook);
    out.println("{\"ready\":true,\"ha\":" + ha + ",\"namenodes\":" + hdfs.addresses() + ",\"active\":0" + kerberosJson + "}");

    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      line = line.trim();
      if (line.isEmpty()) continue;
      if (line.equals("stop")) {
        out.println("{\"ok\":true}");
        break;
      }
      String answer;
      try {
        answer = "{\"ok\":true" + hdfs.run(line.split("\\s+")) + "}";
      } catch (Exception e) {
        e.printStackTrace();
        answer = "{\"ok\":false,\"error\":" + json(e.toString()) + "}";
      }
      out.println(answer);
    }
    Runtime.getRuntime().removeShutdownHook(hook);
    cluster.shutdown(true);
    if (kdc != null) kdc.stop();
    System.exit(0); // Hadoop leaves non-daemon threads behind
  }

  /** HTTPS_ONLY web servers with the given PKCS12 key store, written into ssl-server.xml in CONF_DIR (on the class path). */
  private static void enableHttps(Configuration conf, File confDir, String keystore, String password) throws Exception {
    if (!confDir.isDirectory() && !confDir.mkdirs()) throw new IllegalStateException("cannot create " + confDir);
    Configuration ssl = new Configuration(false);
    ssl.set("ssl.server.keystore.location", keystore);
    ssl.set("ssl.server.keystore.type", "pkcs12");
    ssl.set("ssl.server.keystore.password", password);
    ssl.set("ssl.server.keystore.keypassword", password);
    try (java.io.OutputStream os = new java.io.FileOutputStream(new File(confDir, "ssl-server.xml"))) {
      ssl.writeXml(os);
    }
    conf.set("dfs.http.policy", "HTTPS_ONLY");
    conf.set("dfs.namenode.https-address", "localhost:0");
    conf.set("dfs.datanode.https.address", "localhost:0");
    conf.set("dfs.https.server.keystore.resource", "ssl-server.xml");
  }

  /**
   * Kerberos for the whole cluster (principals and keytabs in KDC_DIR), the launcher logged in as the
   * superuser hdfs/localhost. Returns the JSON object describing the client principals.
   */
  private static String secure(Configuration conf, MiniKdc kdc, File kdcDir) throws Exception {
    String realm = kdc.getRealm();
    File hdfsKeytab = new File(kdcDir, "hdfs.keytab");
    kdc.createPrincipal(hdfsKeytab, "hdfs/localhost", "HTTP/localhost");
    File clientKeytab = new File(kdcDir, "client.keytab");
    kdc.createPrincipal(clientKeytab, "alice");
    String password = java.util.UUID.randomUUID().toString();
    kdc.createPrincipal("bob", password);
    String hdfs = "hdfs/localhost@" + realm;
    conf.set("hadoop.security.authentication", "kerberos");
    conf.set("dfs.namenode.kerberos.principal", hdfs);
    conf.set("dfs.namenode.keytab.file", hdfsKeytab.getAbsolutePath());
    conf.set("dfs.datanode.kerberos.principal", hdfs);
    conf.set("dfs.datanode.keytab.file", hdfsKeytab.getAbsolutePath());
    conf.set("dfs.web.authentication.kerberos.principal", "HTTP/localhost@" + realm);
    conf.set("dfs.web.authentication.kerberos.keytab", hdfsKeytab.getAbsolutePath());
    // Since Hadoop 3.3 WebHDFS is guarded by AuthFilterInitializer, configured from hadoop.http.authentication.*.
    conf.set("hadoop.http.authentication.type", "kerberos");
    conf.set("hadoop.http.authentication.kerberos.principal", "HTTP/localhost@" + realm);
    conf.set("hadoop.http.authentication.kerberos.keytab", hdfsKeytab.getAbsolutePath());
    conf.setBoolean("dfs.block.access.token.enable", true);
    // SASL on the data transfer port stands in for privileged DataNode ports (needs HTTPS_ONLY).
    conf.set("dfs.data.transfer.protection", "authentication");
    UserGroupInformation.setConfiguration(conf);
    UserGroupInformation.loginUserFromKeytab(hdfs, hdfsKeytab.getAbsolutePath());
    return "{\"realm\":" + json(realm) + ",\"kdcHost\":" + json(kdc.getHost()) + ",\"kdcPort\":" + kdc.getPort()
      + ",\"principal\":" + json("alice@" + realm) + ",\"keytab\":" + json(clientKeytab.getAbsolutePath())
      + ",\"passwordPrincipal\":" + json("bob@" + realm) + ",\"password\":" + json(password) + "}";
  }

  /** Runs one command; returns extra JSON members, each starting with a comma. */
  private String run(String[] a) throws Exception {
    switch (a[0]) {
      case "status": {
        StringBuilder up = new StringBuilder("[");
        for (int i = 0; i < webAddresses.length; i++) up.append(i > 0 ? "," : "").append(cluster.isNameNodeUp(i));
        return ",\"namenodes\":" + addresses() + ",\"up\":" + up + "],\"active\":" + active;
      }
      case "failover": {
        int from = Integer.parseInt(a[1]), to = Integer.parseInt(a[2]);
        if (!ha) throw new IllegalStateException("failover needs --ha");
        if (cluster.isNameNodeUp(from)) cluster.transitionToStandby(from);
        active = -1;
        cluster.transitionToActive(to);
        active = to;
        return ",\"active\":" + to;
      }
      case "shutdown-nn": {
        int n = Integer.parseInt(a[1]);
        cluster.shutdownNameNode(n);
        if (n == active) active = -1;
        return ",\"active\":" + active;
      }
      case "restart-nn": {
        int n = Integer.parseInt(a[1]);
        cluster.restartNameNode(n);
        if (!ha) active = 0;
        return ",\"active\":" + active;
      }
      case "write": {
        long size = Long.parseLong(a[2]);
        int seed = (int) Long.parseLong(a[3]);
        long block = a.length > 4 ? Long.parseLong(a[4]) : DEFAULT_BLOCK;
        long start = System.nanoTime();
        write(new Path(a[1]), size, seed, block);
        return ",\"size\":" + size + ",\"millis\":" + (System.nanoTime() - start) / 1_000_000;
      }
      case "mkdir":
        fs().mkdirs(new Path(a[1]));
        return "";
      case "touch":
        fs().create(new Path(a[1]), true).close();
        return "";
      case "delete":
        return ",\"deleted\":" + fs().delete(new Path(a[1]), true);
      case "truncate":
        return ",\"done\":" + fs().truncate(new Path(a[1]), Long.parseLong(a[2]));
      case "chmod":
        fs().setPermission(new Path(a[1]), new FsPermission(Short.parseShort(a[2], 8)));
        return "";
      default:
        throw new IllegalArgumentException("unknown command " + a[0]);
    }
  }

  private FileSystem fs() throws Exception {
    if (active < 0) throw new IllegalStateException("no active NameNode");
    return cluster.getFileSystem(active);
  }

  private void write(Path path, long size, int seed, long block) throws Exception {
    int seedMix = fmix32(seed ^ 0x5BD1E995);
    byte[] buf = new byte[1 << 20];
    long word = 0;
    try (FSDataOutputStream os = fs().create(path, true, 1 << 20, (short) 1, block)) {
      for (long done = 0; done < size; ) {
        int n = (int) Math.min(buf.length, size - done);
        // n is a multiple of 4 except for the file's last buffer, so each word starts at a buffer offset % 4 == 0.
        for (int off = 0; off < n; off += 4, word++) {
          int w = fmix32(((int) word * 0x9E3779B9) ^ seedMix);
          for (int b = 0; b < 4 && off + b < n; b++) buf[off + b] = (byte) (w >>> (8 * b));
        }
        os.write(buf, 0, n);
        done += n;
      }
    }
  }

  static int fmix32(int h) {
    h ^= h >>> 16;
    h *= 0x85EBCA6B;
    h ^= h >>> 13;
    h *= 0xC2B2AE35;
    h ^= h >>> 16;
    return h;
  }

  private String addresses() {
    StringBuilder s = new StringBuilder("[");
    for (int i = 0; i < webAddresses.length; i++) s.append(i > 0 ? "," : "").append(json(webAddresses[i]));
    return s.append("]").toString();
  }

  private static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
}
