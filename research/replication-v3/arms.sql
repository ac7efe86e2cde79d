-- Each arm of the study: runs, arith-v2 before and gain (points; mean, min, max over seeds), the last logged
-- KL (mean, min, max; none for beta 0, where TRL computes no KL), zero_std (mean over the last 10% of steps,
-- averaged over seeds), accuracy on the training problems after training (%) and the mean duration in seconds.
SELECT r.arm, count(*) AS n,
       round(100 * avg(b.value), 1) AS before_pt,
       round(100 * avg(g.value), 1) AS gain_pt,
       round(100 * min(g.value), 1) AS min_gain, round(100 * max(g.value), 1) AS max_gain,
       round(avg(k.value), 3) AS kl_last, round(min(k.value), 3) AS kl_min, round(max(k.value), 3) AS kl_max,
       round(avg(z.value), 3) AS zero_std, round(100 * avg(t.value), 1) AS train_pct,
       round(avg(r.duration_s)) AS seconds
FROM run r JOIN metric b ON b.run_id = r.id AND b.name = 'arith-v2_before'
           JOIN metric g ON g.run_id = r.id AND g.name = 'arith-v2_gain'
           LEFT JOIN metric k ON k.run_id = r.id AND k.name = 'kl_last'
           JOIN metric z ON z.run_id = r.id AND z.name = 'zero_std'
           JOIN metric t ON t.run_id = r.id AND t.name = 'train_acc'
WHERE r.status = 'finished' GROUP BY r.arm ORDER BY r.arm;
