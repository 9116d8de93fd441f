//! A Server-Sent Events decoder for streamed completions: bytes in, the `data` of each complete
//! event out. It buffers across reads (an event may arrive in many TCP reads, or several events in
//! one), ignores comments (`: keep-alive`) and fields other than `data`, and joins multi-line data
//! with `\n`. Lines end with `\n` or `\r\n`.

/// The longest line kept in memory; a longer one means the peer is not speaking SSE.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SseError {
    LineTooLong,
    NotUtf8,
}

#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    /// Bytes of the line being received.
    pending: Vec<u8>,
    /// The data lines of the event being received, if it has any.
    data: Option<String>,
}

impl SseDecoder {
    /// Takes the next bytes of the stream; returns the data of each event they completed.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..newline]);
            rest = &rest[newline + 1..];
            let line = std::mem::take(&mut self.pending);
            if let Some(data) = self.take_line(&line)? {
                events.push(data);
            }
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(SseError::LineTooLong);
        }
        Ok(events)
    }

    /// The stream ended: returns the last event if the peer did not close it with a blank line.
    pub(crate) fn finish(&mut self) -> Result<Option<String>, SseError> {
        let line = std::mem::take(&mut self.pending);
        let event = if line.is_empty() { None } else { self.take_line(&line)? };
        Ok(event.or_else(|| self.data.take()))
    }

    /// Applies one line; a blank line completes the event.
    fn take_line(&mut self, line: &[u8]) -> Result<Option<String>, SseError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = std::str::from_utf8(line).map_err(|_| SseError::NotUtf8)?;
        if line.is_empty() {
            return Ok(self.data.take());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\ndata: {\"a\":1}\n\nevent: message\nid: 7\ndata: {\"b\":\n\
                          data: 2}\r\n\r\nretry: 10\n:\n\ndata: [DONE]\n\n";
    const EVENTS: [&str; 3] = ["{\"a\":1}", "{\"b\":\n2}", "[DONE]"];

    #[test]
    fn decodes_events_whole() {
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(STREAM.as_bytes()).unwrap(), EVENTS);
        assert_eq!(decoder.finish().unwrap(), None);
    }

    #[test]
    fn decodes_events_split_at_every_byte() {
        for split in 0..STREAM.len() {
            let (head, tail) = STREAM.as_bytes().split_at(split);
            let mut decoder = SseDecoder::default();
            let mut events = decoder.push(head).unwrap();
            events.extend(decoder.push(tail).unwrap());
            assert_eq!(events, EVENTS, "split at byte {split}");
        }
    }

    #[test]
    fn decodes_multibyte_text_split_inside_a_character() {
        let stream = "data: {\"c\":\"é…\"}\n\n".as_bytes();
        let mut decoder = SseDecoder::default();
        let mut events = decoder.push(&stream[..13]).unwrap();
        events.extend(decoder.push(&stream[13..]).unwrap());
        assert_eq!(events, ["{\"c\":\"é…\"}"]);
    }

    #[test]
    fn finish_returns_an_event_left_open() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: [DONE]").unwrap().is_empty());
        assert_eq!(decoder.finish().unwrap().as_deref(), Some("[DONE]"));
    }

    #[test]
    fn rejects_bad_bytes_and_endless_lines() {
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(b"data: \xff\xfe\n"), Err(SseError::NotUtf8));
        let mut decoder = SseDecoder::default();
        assert_eq!(decoder.push(&vec![b'x'; MAX_LINE_BYTES + 1]), Err(SseError::LineTooLong));
    }
}
