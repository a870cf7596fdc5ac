package membership

import (
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// gossipTransport is memberlist's network for a node bound to one IP
// address: a TCP listener for its streams and a UDP socket for its
// packets on the same port, as memberlist.NetTransport has them, except
// that a received packet gets a buffer of its own size. NetTransport
// allocates 64 KiB for every packet it receives, whatever its size (a few
// hundred bytes); after its compression, that was a node's largest
// allocation, and the garbage collections it causes land on a change's
// path.
type gossipTransport struct {
	tcp     *net.TCPListener
	udp     *net.UDPConn
	packets chan *memberlist.Packet
	streams chan net.Conn
	logger  *log.Logger

	shutdown atomic.Bool
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*gossipTransport)(nil)

// gossipReadBuffer is the UDP socket's receive buffer, as memberlist asks
// for its own: room for bursts of gossip while the reader is busy.
const gossipReadBuffer = 2 << 20

// listenGossip binds ip:port for TCP and UDP. Port 0 takes a port the
// kernel picks for TCP, and retries when that port is taken for UDP.
func listenGossip(ip net.IP, port int, logger *log.Logger) (*gossipTransport, error) {
	attempts := 1
	if port == 0 {
		attempts = 10
	}
	var err error
	for range attempts {
		var t *gossipTransport
		if t, err = tryListenGossip(ip, port, logger); err == nil {
			return t, nil
		}
	}
	return nil, err
}

func tryListenGossip(ip net.IP, port int, logger *log.Logger) (*gossipTransport, error) {
	tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("membership: gossip TCP listener: %w", err)
	}
	port = tcp.Addr().(*net.TCPAddr).Port
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("membership: gossip UDP socket: %w", err)
	}
	for size := gossipReadBuffer; size > 0; size /= 2 {
		if udp.SetReadBuffer(size) == nil {
			break
		}
	}
	t := &gossipTransport{
		tcp:     tcp,
		udp:     udp,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		logger:  logger,
	}
	t.wg.Add(2)
	go t.acceptStreams()
	go t.readPackets()
	return t, nil
}

// port is the port both halves are bound to.
func (t *gossipTransport) port() int { return t.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is the bound address unless memberlist was given
// one to advertise.
func (t *gossipTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip == "" {
		return t.tcp.Addr().(*net.TCPAddr).IP, t.port(), nil
	}
	addr := net.ParseIP(ip)
	if addr == nil {
		return nil, 0, fmt.Errorf("membership: advertise address %q is not an IP address", ip)
	}
	if ip4 := addr.To4(); ip4 != nil {
		addr = ip4
	}
	return addr, port, nil
}

func (t *gossipTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	udpAddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	// memberlist takes this time as the moment a probe left.
	_, err = t.udp.WriteTo(b, udpAddr)
	return time.Now(), err
}

func (t *gossipTransport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, addr.Addr)
}

func (t *gossipTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *gossipTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

func (t *gossipTransport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(addr.Addr, timeout)
}

func (t *gossipTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both sockets and waits for their goroutines, which
// memberlist has stopped reading from by then.
func (t *gossipTransport) Shutdown() error {
	t.shutdown.Store(true)
	err := errors.Join(t.tcp.Close(), t.udp.Close())
	t.wg.Wait()
	return err
}

func (t *gossipTransport) acceptStreams() {
	defer t.wg.Done()
	for delay := time.Duration(0); ; {
		conn, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			// As memberlist does: back off on errors such as running out
			// of descriptors rather than spin.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.logger.Printf("[ERR] memberlist: accepting a TCP connection: %v", err)
			time.Sleep(delay)
			continue
		}
		delay = 0
		t.streams <- conn
	}
}

// readPackets reads every packet into one buffer and hands memberlist a
// copy of its own size.
func (t *gossipTransport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, 65536) // a UDP datagram's largest payload
	for {
		n, addr, err := t.udp.ReadFrom(buf)
		now := time.Now()
		if err != nil {
			if t.shutdown.Load() {
				return
			}
			t.logger.Printf("[ERR] memberlist: reading a UDP packet: %v", err)
			continue
		}
		if n < 1 {
			continue // memberlist's messages have a type byte at least
		}
		t.packets <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: addr, Timestamp: now}
	}
}
