<?php
// A PHP worker called by Go clients, for php_test.go. It serves PREFIX.hash
// (a json_encode'd structure), PREFIX.echo (json_decodes its workload and
// returns it with its PHP type) and PREFIX.reverse (a raw string), then
// exits after COUNT jobs.
//
//   php worker.php HOST:PORT PREFIX COUNT
if ($argc != 4) {
    fwrite(STDERR, "usage: php worker.php HOST:PORT PREFIX COUNT\n");
    exit(2);
}
[, $server, $prefix, $count] = $argv;
[$host, $port] = explode(':', $server);

$worker = new GearmanWorker();
$worker->addServer($host, (int)$port);
$worker->setTimeout(20000);

$worker->addFunction("$prefix.hash", function (GearmanJob $job) {
    $w = $job->workload();
    return json_encode([
        'md5' => md5($w),
        'sha1' => sha1($w),
        'len' => strlen($w),
        'tags' => ['é', 'a/b'],             // json_encode escapes both: \u00e9, a\/b
        'nested' => ['ok' => true, 'ratio' => 1.5],
        'none' => null,
    ]);
});
$worker->addFunction("$prefix.echo", function (GearmanJob $job) {
    $in = json_decode($job->workload(), true);
    return json_encode(['type' => gettype($in), 'got' => $in]);
});
$worker->addFunction("$prefix.reverse", function (GearmanJob $job) {
    return strrev($job->workload());
});

for ($i = 0; $i < (int)$count; $i++) {
    if (!$worker->work()) {
        fwrite(STDERR, "work: " . $worker->error() . " (code " . $worker->returnCode() . ")\n");
        exit(1);
    }
}
