//! Writing a long output on every core: pieces are encoded side by side, each into its
//! own buffer, and written in order, with only a few buffers held at a time.

use std::io::{Result, Write};
use std::sync::mpsc::{channel, sync_channel};

/// Encodes pieces `0..pieces` with `encode` on up to all cores and writes them to `out`
/// in order. Each encoding thread holds at most two finished pieces and reuses the
/// buffers already written, so memory stays at a few pieces whatever the output's size. The first error, of `encode` or of the
/// writer, stops the writing and is returned.
pub fn write_in_order(
    pieces: usize,
    encode: impl Fn(usize, &mut Vec<u8>) -> Result<()> + Sync,
    out: &mut impl Write,
) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(pieces);
    if threads <= 1 {
        let mut buffer = Vec::new();
        for piece in 0..pieces {
            buffer.clear();
            encode(piece, &mut buffer)?;
            out.write_all(&buffer)?;
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let encode = &encode;
        let threads: Vec<_> = (0..threads)
            .map(|first| {
                let (send, receive) = sync_channel::<Result<Vec<u8>>>(2);
                // Written buffers come back to be filled again: fresh ones would cost
                // the kernel zeroing new pages for every piece.
                let (give_back, returned) = channel::<Vec<u8>>();
                scope.spawn(move || {
                    for piece in (first..pieces).step_by(threads) {
                        let mut buffer = returned.try_recv().unwrap_or_default();
                        buffer.clear();
                        let encoded = encode(piece, &mut buffer).map(|()| buffer);
                        let failed = encoded.is_err();
                        // A closed channel: the writer stopped; so does this thread.
                        if send.send(encoded).is_err() || failed {
                            return;
                        }
                    }
                });
                (receive, give_back)
            })
            .collect();
        for piece in 0..pieces {
            let (receive, give_back) = &threads[piece % threads.len()];
            let encoded = receive
                .recv()
                .map_err(|_| std::io::Error::other("an encoding thread stopped"))??;
            out.write_all(&encoded)?;
            // The thread may have finished: then the buffer is simply dropped.
            let _ = give_back.send(encoded);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_written_in_order_whatever_thread_encodes_them() {
        let mut out = Vec::new();
        write_in_order(
            1000,
            |i, buffer| {
                write!(buffer, "{i},")?;
                Ok(())
            },
            &mut out,
        )
        .unwrap();
        let want: String = (0..1000).map(|i| format!("{i},")).collect();
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn the_first_error_stops_the_writing() {
        let mut out = Vec::new();
        let error = write_in_order(
            100,
            |i, buffer| {
                if i == 37 {
                    return Err(std::io::Error::other("piece 37 is bad"));
                }
                buffer.push(b'.');
                Ok(())
            },
            &mut out,
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "piece 37 is bad");
        assert_eq!(out.len(), 37);
    }
}
