<?php
// A PHP client of Go workers, for php_test.go: what a team migrating from
// sfGearmanPlugin keeps running. It calls the hash, reverse and echo
// functions and prints, as JSON, what it understood of their results.
//
//   php client.php HOST:PORT HASH_FN REVERSE_FN ECHO_FN
if ($argc != 5) {
    fwrite(STDERR, "usage: php client.php HOST:PORT HASH_FN REVERSE_FN ECHO_FN\n");
    exit(2);
}
[, $server, $hashFn, $reverseFn, $echoFn] = $argv;
[$host, $port] = explode(':', $server);

$client = new GearmanClient();
$client->addServer($host, (int)$port);
$client->setTimeout(20000);

function call(GearmanClient $client, string $fn, string $workload): string
{
    $result = $client->doNormal($fn, $workload);
    if ($client->returnCode() != GEARMAN_SUCCESS) {
        fwrite(STDERR, "$fn: " . $client->error() . " (code " . $client->returnCode() . ")\n");
        exit(1);
    }
    return $result;
}

// hash returns an array: plain JSON that json_decode reads.
$hashRaw = call($client, $hashFn, 'Hello!');
$hash = json_decode($hashRaw, true);
if (!is_array($hash) || count($hash) != 2) {
    fwrite(STDERR, "hash: json_decode gave " . var_export($hash, true) . " for " . var_export($hashRaw, true) . "\n");
    exit(1);
}

// reverse returns a string: raw, no JSON quotes.
$reverse = call($client, $reverseFn, 'Hello!');

// A structured workload: json_encode'd, decoded by the Go worker into a struct.
$echoRaw = call($client, $echoFn, json_encode(['name' => 'é/ü', 'n' => 42, 'tags' => ['a', 'b']]));
$echo = json_decode($echoRaw, true);
if (!is_array($echo)) {
    fwrite(STDERR, "echo: json_decode gave " . var_export($echo, true) . " for " . var_export($echoRaw, true) . "\n");
    exit(1);
}

echo json_encode(['hash' => $hash, 'reverse' => $reverse, 'echo' => $echo]), "\n";
