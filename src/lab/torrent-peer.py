"""BitTorrent baseline for the network lab: Debian's python3-libtorrent (2.0.x), run by /usr/bin/python3.

  torrent-peer.py make SRC_DIR OUT.torrent PIECE_BYTES
      a v1 torrent of the directory SRC_DIR (its name becomes the torrent's top directory)
  torrent-peer.py peer TORRENT SAVE_DIR LISTEN_IP PORT [PEER_IP:PORT ...]
      joins the swarm with DHT, LSD, UPnP and NAT-PMP off; peers are added only by connect_peer (again every
      2 s, for peers that were not listening yet). Prints {"listening":...} once, {"ok":true,"seconds":S}
      when every piece is verified on disk (S from the session's start), then keeps seeding until SIGTERM.
"""
import json
import os
import signal
import sys
import time

import libtorrent as lt


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def make(src_dir, out, piece):
    fs = lt.file_storage()
    lt.add_files(fs, src_dir)
    t = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(src_dir)))
    with open(out, "wb") as f:
        f.write(lt.bencode(t.generate()))


def peer(torrent, save, ip, port, peers):
    start = time.monotonic()
    ses = lt.session({
        "listen_interfaces": "%s:%d" % (ip, port),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": 0,
    })
    h = ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save})
    emit({"listening": "%s:%d" % (ip, port)})
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    done = False
    last_connect = -10.0
    while not stop:
        now = time.monotonic()
        if now - last_connect >= 2:
            for p in peers:
                host, _, p_port = p.rpartition(":")
                h.connect_peer((host, int(p_port)))
            last_connect = now
        s = h.status()
        if not done and s.is_seeding:
            done = True
            emit({"ok": True, "seconds": now - start, "bytes": s.total_wanted})
        time.sleep(0.1)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "peer":
        peer(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6:])
    else:
        sys.exit("usage: torrent-peer.py make|peer ...")
