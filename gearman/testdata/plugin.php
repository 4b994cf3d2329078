<?php
// PHP written the way sfGearmanPlugin's classes call php-gearman, for
// plugin_test.go: workloads and results through the plugin's
// serialize-if-not-scalar and unserialize-else-raw helpers, function names
// suffixed "@NAMESPACE", the queue as background jobs of queue.NAME whose
// workload is always serialize()d.
//
//   php plugin.php client HOST:PORT NAMESPACE   call Go's echo and typed, put a queue message, print a report
//   php plugin.php worker HOST:PORT NAMESPACE   serve echo for Go clients (3 jobs), then take one queue message
if ($argc != 4) {
    fwrite(STDERR, "usage: php plugin.php client|worker HOST:PORT NAMESPACE\n");
    exit(2);
}
[, $mode, $server, $ns] = $argv;
[$host, $port] = explode(':', $server);

// As sfGearman::serialize and ::unserialize behave.
function plugin_serialize($data) { return is_scalar($data) ? $data : serialize($data); }
function plugin_unserialize($data) {
    $v = @unserialize($data);
    return ($v !== false || $data === 'b:0;') ? $v : $data;
}
function fn_name($name, $ns) { return $ns === '' ? $name : "$name@$ns"; }
// ksort_deep orders keys so that === compares content, not insertion order.
function ksort_deep($v) {
    if (!is_array($v)) return $v;
    ksort($v, SORT_STRING);
    foreach ($v as $k => $x) $v[$k] = ksort_deep($x);
    return $v;
}
function cases() {
    $obj = new stdClass; $obj->title = 'Hello é'; $obj->id = 7; $obj->tags = ['a', 'b'];
    return [
        'list' => [1, 2, 3],
        'scalars' => ['int' => 42, 'neg' => -7, 'big' => PHP_INT_MAX, 'float' => 1.5, 'exp' => 1.0E+25,
                      'tiny' => 1.5E-7, 'true' => true, 'false' => false, 'null' => null, 'str' => "é \"q\";"],
        'object as array' => (array)$obj,
        'nested' => ['a' => ['b' => ['c' => [1 => 'x', 5 => [true, null, 2.25]]]], 'empty' => []],
        'sparse' => [5 => 'x', 7 => 'y'],
        'empty' => [],
    ];
}

if ($mode === 'client') {
    $client = new GearmanClient();
    $client->addServer($host, (int)$port);
    $client->setTimeout(20000);
    $report = [];
    foreach (cases() as $name => $v) {
        $res = $client->doNormal(fn_name('echo', $ns), plugin_serialize($v));
        if ($client->returnCode() != GEARMAN_SUCCESS) {
            $report[$name] = 'error ' . $client->returnCode() . ' ' . $client->error();
            continue;
        }
        $back = plugin_unserialize($res);
        $report[$name] = ksort_deep($back) === ksort_deep($v) ? 'same' : 'got ' . var_export($back, true);
    }
    // typed: Go decodes into a struct and answers with one.
    $res = $client->doNormal(fn_name('typed', $ns), plugin_serialize(['id' => 3, 'price' => 9.5, 'ok' => true, 'tags' => ['x'], 'note' => null]));
    $typed = plugin_unserialize($res);
    $report['typed'] = (ksort_deep($typed) === ksort_deep(['id' => 4, 'note' => null, 'ok' => false, 'price' => 19.0, 'tags' => ['x', 'go']]))
        ? 'same' : 'got ' . var_export($typed, true);
    // A raw string goes raw both ways.
    $rev = $client->doNormal(fn_name('reverse', $ns), plugin_serialize('Hello!'));
    $report['reverse'] = plugin_unserialize($rev) === '!olleH' ? 'same' : "got $rev";
    // The queue: sfGearmanQueue::put serializes even a string.
    foreach (['a message', ['id' => 1, 'f' => 0.5, 'l' => [true, null]]] as $msg) {
        $client->doBackground(fn_name('queue.q1', $ns), serialize($msg));
        if ($client->returnCode() != GEARMAN_SUCCESS) {
            $report['queue'] = 'put failed ' . $client->error();
        }
    }
    echo json_encode($report), "\n";
    exit(0);
}

// worker
$worker = new GearmanWorker();
$worker->addServer($host, (int)$port);
$worker->setTimeout(20000);
$worker->addFunction(fn_name('echo', $ns), function (GearmanJob $job) {
    $v = plugin_unserialize($job->workload());
    return plugin_serialize(['type' => gettype($v), 'value' => $v]);
});
for ($i = 0; $i < 3; $i++) {
    $worker->work();
    if ($worker->returnCode() != GEARMAN_SUCCESS) {
        fwrite(STDERR, "worker: " . $worker->error() . "\n");
        exit(1);
    }
}
// sfGearmanQueue::get: a worker for queue.NAME, one job, unserialize().
$got = null;
$q = new GearmanWorker();
$q->addServer($host, (int)$port);
$q->setTimeout(20000);
$q->addFunction(fn_name('queue.q2', $ns), function (GearmanJob $job) use (&$got) {
    $got = unserialize($job->workload());
    return true;
});
$q->work();
if ($q->returnCode() != GEARMAN_SUCCESS) {
    fwrite(STDERR, "queue get: " . $q->error() . "\n");
    exit(1);
}
echo serialize($got), "\n";
