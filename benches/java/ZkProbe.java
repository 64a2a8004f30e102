// A tiny driver of the official ZooKeeper Java client (3.8), used by the zk-failover
// benchmarks (benches/failover.rs, benches/steady.rs) to measure it the same way as the Rust
// clients. It is compiled with javac at bench set-up and driven over stdin/stdout, one command
// per line; every reply is one line. Times are System.nanoTime() (CLOCK_MONOTONIC).
//
//   connect <connstr> <timeoutMs>  -> ok <sessionIdHex> <negotiatedMs> | err <why>
//   loop-start                     -> looping       (sequential getData /probe, forever)
//   mark                           -> marked        (resets the recorder; times below are after it)
//   result                         -> result <firstFailNs> <firstOkAfterFailNs> <firstOkNs> <sessionIdHex> <state>
//   loop-stop                      -> stopped
//   close                          -> closed
//   seq <n>                        -> seq <totalNs> <p50Ns> <p99Ns>
//   pipe <inFlight> <n> <r|w>      -> pipe <totalNs> <errors>
//   storm-connect <connstr> <n> <timeoutMs> -> storm-ready <n>
//   storm-go                       -> storm-done <lastOkNsAfterGo> <expired> <ok>
//   idle <connstr> <n> <timeoutMs> -> idle-ready <n>
//   ping                           -> pong
//   fleet <connstr> <timeoutMs>    -> ready <sessionIdHex> | err <why>; then, asynchronously, one
//                                     line per event (benches/fleet.rs, one JVM per fleet member):
//                                     d <ns> (a read failed or the client said Disconnected),
//                                     u <ns> (first successful read after a d), x <ns> (expired);
//                                     the session reads /probe every 100 ms
//   fleet-stop                     -> stopped <reads> <failedReads>  (session closed)
//   quit
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.zookeeper.AsyncCallback;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class ZkProbe {
    static final String PATH = "/probe";
    static ZooKeeper zk;
    static volatile boolean looping;
    static Thread loopThread;
    static final Object lock = new Object();
    static long markNs;
    static long firstFail = -1;
    static long firstOkAfterFail = -1;
    static long firstOk = -1;
    static final List<ZooKeeper> storm = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.trim().split("\\s+");
            try {
                switch (a[0]) {
                    case "connect": out.println(connect(a[1], Integer.parseInt(a[2]))); break;
                    case "server": out.println(server()); break;
                    case "loop-start": startLoop(); out.println("looping"); break;
                    case "mark":
                        synchronized (lock) {
                            markNs = System.nanoTime();
                            firstFail = -1; firstOkAfterFail = -1; firstOk = -1;
                        }
                        out.println("marked");
                        break;
                    case "result":
                        synchronized (lock) {
                            out.println("result " + firstFail + " " + firstOkAfterFail + " " + firstOk + " "
                                + Long.toHexString(zk.getSessionId()) + " " + zk.getState());
                        }
                        break;
                    case "loop-stop":
                        looping = false;
                        if (loopThread != null) { loopThread.join(30000); loopThread = null; }
                        out.println("stopped");
                        break;
                    case "close":
                        if (zk != null) { zk.close(2000); zk = null; }
                        out.println("closed");
                        break;
                    case "seq": out.println(seq(Integer.parseInt(a[1]))); break;
                    case "pipe": out.println(pipe(Integer.parseInt(a[1]), Integer.parseInt(a[2]), a[3].equals("w"))); break;
                    case "storm-connect": out.println(stormConnect(a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3]), "storm-ready")); break;
                    case "idle": out.println(stormConnect(a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3]), "idle-ready")); break;
                    case "storm-go": out.println(stormGo()); break;
                    case "ping": out.println("pong"); break;
                    case "fleet": fleet(out, a[1], Integer.parseInt(a[2])); break;
                    case "fleet-stop": out.println(fleetStop()); break;
                    case "quit": System.exit(0); break;
                    default: out.println("err unknown command " + a[0]);
                }
            } catch (Exception e) {
                out.println("err " + e.toString().replace('\n', ' '));
            }
        }
        System.exit(0);
    }

    static ZooKeeper open(String connstr, int timeoutMs, CountDownLatch connected, AtomicInteger expired) throws Exception {
        return new ZooKeeper(connstr, timeoutMs, (WatchedEvent e) -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
            if (e.getState() == Watcher.Event.KeeperState.Expired && expired != null) expired.incrementAndGet();
        });
    }

    // The server the session is connected to, from ClientCnxn's description
    // ("... remoteserver:localhost/127.0.0.1:2181 ..."): `cons` on a plain port does not list
    // the connections of the secureClientPort.
    static String server() {
        String s = String.valueOf(zk);
        int i = s.indexOf("remoteserver:");
        if (i < 0) return "err no server";
        String r = s.substring(i + "remoteserver:".length()).split(" ")[0];
        return "ok " + r.substring(r.indexOf('/') + 1);
    }

    static String connect(String connstr, int timeoutMs) throws Exception {
        CountDownLatch c = new CountDownLatch(1);
        zk = open(connstr, timeoutMs, c, null);
        if (!c.await(30, TimeUnit.SECONDS)) return "err connect timeout";
        return "ok " + Long.toHexString(zk.getSessionId()) + " " + zk.getSessionTimeout();
    }

    static void startLoop() {
        looping = true;
        final ZooKeeper z = zk;
        loopThread = new Thread(() -> {
            Stat st = new Stat();
            while (looping) {
                boolean ok;
                try { z.getData(PATH, false, st); ok = true; }
                catch (KeeperException e) { ok = false; }
                catch (InterruptedException e) { return; }
                long t = System.nanoTime();
                synchronized (lock) {
                    if (markNs == 0 || t <= markNs) continue;
                    long rel = t - markNs;
                    if (ok) {
                        if (firstOk < 0) firstOk = rel;
                        if (firstFail >= 0 && firstOkAfterFail < 0) firstOkAfterFail = rel;
                    } else if (firstFail < 0) {
                        firstFail = rel;
                    }
                }
            }
        }, "probe-loop");
        loopThread.start();
    }

    static String seq(int n) throws Exception {
        long[] lat = new long[n];
        Stat st = new Stat();
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            long s = System.nanoTime();
            zk.getData(PATH, false, st);
            lat[i] = System.nanoTime() - s;
        }
        long total = System.nanoTime() - t0;
        Arrays.sort(lat);
        return "seq " + total + " " + lat[n / 2] + " " + lat[Math.min(n - 1, (int) (n * 0.99))];
    }

    static String pipe(int inFlight, int n, boolean write) throws Exception {
        Semaphore window = new Semaphore(inFlight);
        CountDownLatch done = new CountDownLatch(n);
        AtomicInteger errors = new AtomicInteger();
        byte[] payload = new byte[16];
        AsyncCallback.DataCallback dcb = (rc, path, ctx, data, stat) -> {
            if (rc != 0) errors.incrementAndGet();
            window.release(); done.countDown();
        };
        AsyncCallback.StatCallback scb = (rc, path, ctx, stat) -> {
            if (rc != 0) errors.incrementAndGet();
            window.release(); done.countDown();
        };
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) {
            window.acquire();
            if (write) zk.setData(PATH, payload, -1, scb, null);
            else zk.getData(PATH, false, dcb, null);
        }
        done.await();
        return "pipe " + (System.nanoTime() - t0) + " " + errors.get();
    }

    static String stormConnect(String connstr, int n, int timeoutMs, String reply) throws Exception {
        CountDownLatch c = new CountDownLatch(n);
        for (int i = 0; i < n; i++) storm.add(open(connstr, timeoutMs, c, stormExpired));
        if (!c.await(120, TimeUnit.SECONDS)) return "err storm connect timeout";
        return reply + " " + n;
    }

    static final AtomicInteger stormExpired = new AtomicInteger();

    static String stormGo() throws Exception {
        final long go = System.nanoTime();
        final AtomicLong last = new AtomicLong();
        final CountDownLatch done = new CountDownLatch(storm.size());
        for (ZooKeeper z : storm) issue(z, go, last, done);
        done.await(120, TimeUnit.SECONDS);
        return "storm-done " + last.get() + " " + stormExpired.get() + " " + (storm.size() - done.getCount());
    }

    static void issue(final ZooKeeper z, final long go, final AtomicLong last, final CountDownLatch done) {
        z.getData(PATH, false, (rc, path, ctx, data, stat) -> {
            if (rc == KeeperException.Code.OK.intValue()) {
                long t = System.nanoTime() - go;
                last.accumulateAndGet(t, Math::max);
                done.countDown();
            } else if (rc == KeeperException.Code.SESSIONEXPIRED.intValue()) {
                done.countDown();
            } else {
                issue(z, go, last, done);
            }
        }, null);
    }

    // Fleet member: one session reading every 100 ms, events printed as they happen.
    static ZooKeeper fleetZk;
    static Thread fleetThread;
    static volatile boolean fleetRunning;
    static volatile boolean fleetDown;
    static long fleetReads, fleetFails;

    static void fleet(final PrintStream out, String connstr, int timeoutMs) throws Exception {
        final CountDownLatch c = new CountDownLatch(1);
        fleetDown = false;
        fleetReads = 0;
        fleetFails = 0;
        fleetZk = new ZooKeeper(connstr, timeoutMs, (WatchedEvent e) -> {
            switch (e.getState()) {
                case SyncConnected: c.countDown(); break;
                case Disconnected:
                    if (fleetRunning) { fleetDown = true; out.println("d " + System.nanoTime()); }
                    break;
                case Expired: out.println("x " + System.nanoTime()); break;
                default: break;
            }
        });
        if (!c.await(60, TimeUnit.SECONDS)) { out.println("err connect timeout"); return; }
        final ZooKeeper z = fleetZk;
        z.getData(PATH, false, new Stat());
        fleetRunning = true;
        fleetThread = new Thread(() -> {
            Stat st = new Stat();
            long next = System.nanoTime();
            while (fleetRunning) {
                boolean ok;
                try { z.getData(PATH, false, st); ok = true; }
                catch (KeeperException e) { ok = false; }
                catch (InterruptedException e) { return; }
                long t = System.nanoTime();
                fleetReads++;
                if (ok) {
                    if (fleetDown) { fleetDown = false; out.println("u " + t); }
                } else {
                    fleetFails++;
                    fleetDown = true;
                    out.println("d " + t);
                }
                next += 100_000_000L;
                long now = System.nanoTime();
                if (next < now) next = now;
                try { Thread.sleep((next - now) / 1_000_000L, (int) ((next - now) % 1_000_000L)); }
                catch (InterruptedException e) { return; }
            }
        }, "fleet-reader");
        fleetThread.start();
        out.println("ready " + Long.toHexString(z.getSessionId()));
    }

    static String fleetStop() throws Exception {
        fleetRunning = false;
        if (fleetThread != null) { fleetThread.join(10000); fleetThread = null; }
        if (fleetZk != null) { fleetZk.close(2000); fleetZk = null; }
        return "stopped " + fleetReads + " " + fleetFails;
    }
}
