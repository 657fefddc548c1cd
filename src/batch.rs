//! Planning `SendMessageBatch` calls: at most 10 entries and 1 MiB (1,048,576 bytes) per call
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>).
//! Messages keep their order; each batch is as full as the limits allow.

use std::ops::Range;

/// Most entries in one `SendMessageBatch` call.
pub const MAX_ENTRIES: usize = 10;
/// Most bytes in one message, and in one `SendMessageBatch` call.
pub const MAX_BYTES: usize = 1_048_576;

/// A message that cannot be sent at all: SQS refuses it whatever the batching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "notification {index} is {size} bytes with its attributes, over SQS's limit of {MAX_BYTES}"
)]
pub struct TooLarge {
    pub index: usize,
    pub size: usize,
}

/// Groups messages of the given sizes into batches, as ranges of indices.
pub fn plan(sizes: &[usize]) -> Result<Vec<Range<usize>>, TooLarge> {
    let mut batches = Vec::with_capacity(sizes.len().div_ceil(MAX_ENTRIES));
    let mut start = 0;
    let mut bytes = 0;
    for (index, &size) in sizes.iter().enumerate() {
        if size > MAX_BYTES {
            return Err(TooLarge { index, size });
        }
        if index - start == MAX_ENTRIES || bytes + size > MAX_BYTES {
            batches.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    Ok(batches)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a plan of one batch is a Vec of one range
mod tests {
    use super::*;

    #[test]
    fn no_messages_plan_no_batch() {
        assert_eq!(plan(&[]), Ok(vec![]));
    }

    #[test]
    fn ten_small_messages_fit_one_batch() {
        assert_eq!(plan(&[100; 10]), Ok(vec![0..10]));
    }

    #[test]
    fn eleventh_message_starts_a_new_batch() {
        assert_eq!(plan(&[100; 11]), Ok(vec![0..10, 10..11]));
    }

    #[test]
    fn fifty_messages_make_five_full_batches() {
        assert_eq!(
            plan(&[1; 50]),
            Ok(vec![0..10, 10..20, 20..30, 30..40, 40..50])
        );
    }

    #[test]
    fn batch_of_exactly_one_mebibyte_is_kept_whole() {
        let half = MAX_BYTES / 2;
        assert_eq!(plan(&[half, half]), Ok(vec![0..2]));
    }

    #[test]
    fn one_byte_over_a_mebibyte_splits_the_batch() {
        let half = MAX_BYTES / 2;
        assert_eq!(plan(&[half, half + 1, 1]), Ok(vec![0..1, 1..3]));
    }

    #[test]
    fn message_of_exactly_one_mebibyte_is_sent_alone() {
        assert_eq!(plan(&[1, MAX_BYTES, 1]), Ok(vec![0..1, 1..2, 2..3]));
    }

    #[test]
    fn message_over_one_mebibyte_is_too_large() {
        let sizes = [1, MAX_BYTES + 1];
        assert_eq!(
            plan(&sizes),
            Err(TooLarge {
                index: 1,
                size: MAX_BYTES + 1
            })
        );
    }

    #[test]
    fn batches_never_pass_either_limit() {
        let sizes: Vec<usize> = (0..200).map(|i| (i * 7919) % 300_000 + 1).collect();
        let batches = plan(&sizes).expect("every size is under the limit");
        let covered: Vec<usize> = batches.iter().flat_map(|b| b.clone()).collect();
        assert_eq!(covered, (0..sizes.len()).collect::<Vec<_>>());
        for batch in batches {
            assert!(batch.len() <= MAX_ENTRIES);
            assert!(sizes[batch].iter().sum::<usize>() <= MAX_BYTES);
        }
    }
}
