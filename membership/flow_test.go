package membership

import "testing"

func TestFlowControlRefusesCreditOverTheWindow(t *testing.T) {
	f := newFlowControl(8)
	f.start(4)
	for range 4 {
		if !f.canSend() {
			t.Fatal("out of credit before the window was spent")
		}
		f.spend()
	}
	if f.canSend() {
		t.Fatal("credit left after spending the whole window")
	}
	if err := f.credited(5); err == nil {
		t.Fatal("a grant over the peer's window was accepted")
	}
	if f.canSend() {
		t.Fatal("a refused grant was applied")
	}
	if err := f.credited(4); err != nil {
		t.Fatal(err)
	}
	if err := f.credited(1); err == nil {
		t.Fatal("credit beyond the window in total was accepted")
	}
	if got := f.sendCredit.Load(); got != 4 {
		t.Fatalf("credit %d, want 4", got)
	}
}

func TestFlowControlRefusesPayloadsWithoutCredit(t *testing.T) {
	f := newFlowControl(2)
	for range 2 {
		if err := f.received(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.received(); err == nil {
		t.Fatal("a payload beyond the window was accepted")
	}
	f.release()
	f.release()
	if err := f.received(); err != nil {
		t.Fatalf("a payload after credit came back: %v", err)
	}
}

// TestFlowControlNeverStrandsASender: whatever the order of receipts and
// releases, once the receiver's application has taken everything, the
// sender holds its window again but for less than one batch of credit
// (a quarter window) held back to be granted with the next ones.
func TestFlowControlNeverStrandsASender(t *testing.T) {
	const window = 256
	recv := newFlowControl(window)
	send := newFlowControl(window)
	send.start(window)
	queued := 0
	for round := range 2000 {
		// The sender writes what it may, a few at a time.
		for i := 0; i < 1+round%7 && send.canSend(); i++ {
			send.spend()
			if err := recv.received(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			queued++
		}
		// The application takes a varying number.
		for i := 0; i < round%5 && queued > 0; i++ {
			recv.release()
			queued--
		}
		if frame, ok := recv.takeGrant(); ok {
			n, err := decodeCredit(frame[5:])
			if err != nil {
				t.Fatal(err)
			}
			if err := send.credited(n); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	for ; queued > 0; queued-- {
		recv.release()
	}
	if frame, ok := recv.takeGrant(); ok {
		n, _ := decodeCredit(frame[5:])
		if err := send.credited(n); err != nil {
			t.Fatal(err)
		}
	}
	if got := send.sendCredit.Load(); got < window-window/4+1 {
		t.Fatalf("sender holds %d credits with nothing queued, want nearly the %d window", got, window)
	}
}
