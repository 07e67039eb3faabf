# common.tcl - what the Tcl extension's test scripts share, sourced first: tcltest, the package
# from the build tree (TCLLIBPATH), the GPU scenario as test constraints, readers of /proc for
# checking memsnap's figures against, and finish, which ends the script with a non-zero status
# when a test failed.
#
# Environment (set by bindings/tcl/meson.build): MEMSNAP_TCL_GPU is "fake" (the fake
# libnvidia-ml.so.1 of tests/gpu is on LD_LIBRARY_PATH, only the nvml backend is tried),
# "initfail" (the same fake, whose nvmlInit fails) or "none" (no NVML on the library path, every
# backend tried); MEMSNAP_TCL_MODULE is the module
# the package must come from; LD_PRELOAD holds the ASan runtime in a sanitizer build.

package require tcltest 2.5
namespace import ::tcltest::*
configure -verbose {pass skip error}

package require memsnap

# The ASan runtime was preloaded for this process only: the programs the tests start
# (sleep, readelf) run without it.
set asan [string match *libasan* [expr {[info exists env(LD_PRELOAD)] ? $env(LD_PRELOAD) : ""}]]
unset -nocomplain env(LD_PRELOAD)

set scenario $env(MEMSNAP_TCL_GPU)

# Why this host would give GPUs to the 'none' scenario anyway ("" when it has none): found
# without asking memsnap, so that a memsnap that wrongly sees a GPU fails instead of skipping.
proc hostGpus {} {
    set why {}
    if {[auto_execok nvidia-smi] ne ""} {
        lappend why "nvidia-smi is on PATH"
    }
    foreach ldconfig {/sbin/ldconfig /usr/sbin/ldconfig} {
        if {[file executable $ldconfig] && ![catch {exec $ldconfig -p} out]} {
            if {[string match *libnvidia-ml.so.1* $out]} {
                lappend why "libnvidia-ml.so.1 is installed"
            }
            break
        }
    }
    foreach link [glob -nocomplain /sys/class/drm/card*/device/driver] {
        set driver [file tail [file readlink $link]]
        if {$driver in {amdgpu i915 xe}} {
            lappend why "an $driver card is present"
        }
    }
    return [join [lsort -unique $why] ", "]
}

set hostgpus [expr {$scenario eq "none" ? [hostGpus] : ""}]
testConstraint fakeGpu [expr {$scenario eq "fake"}]
testConstraint noGpu [expr {$scenario eq "initfail" || ($scenario eq "none" && $hostgpus eq "")}]
testConstraint glibcHeap [expr {!$asan}]
if {$hostgpus ne ""} {
    puts "skipping the no-GPU checks: this host has a GPU ($hostgpus)"
}
if {$asan} {
    puts "skipping the malloc_trim checks: under ASan, malloc is ASan's and keeps its memory"
}

# The fake's devices (tests/gpu/fake_nvml.c, devs[] and procs_of()): name, total GiB, used GiB,
# reserved MiB, and what the calling process holds on it in MiB.
set fakeDevices {
    {{Fake H100} 80 10 512 1024}
    {{Fake A100} 40 1 256 0}
    {{Fake L4} 24 2 128 256}
}

set pagesize [exec getconf PAGESIZE]

# The fields of /proc/PID/statm in bytes, as a dict: vms rss shared text data.
proc statm {{pid self}} {
    set f [open /proc/$pid/statm]
    set fields [gets $f]
    close $f
    lassign $fields size resident shared text lib data
    set d {}
    foreach {k v} [list vms $size rss $resident shared $shared text $text data $data] {
        dict set d $k [expr {$v * $::pagesize}]
    }
    return $d
}

# Starts `sleep 60` in the background and returns its pid once it runs sleep and sleeps (state
# S), so that its memory no longer changes; the wait is synchronisation, not a timed check.
proc startSleeper {} {
    set pid [exec sleep 60 &]
    for {set i 0} {$i < 3000} {incr i} {
        if {![catch {file readlink /proc/$pid/exe} exe] && [string match *sleep $exe] &&
            ![catch {open /proc/$pid/stat} f]} {
            set stat [read $f]
            close $f
            if {[lindex [regexp -inline {\) (\S)} $stat] 1] eq "S"} {
                return $pid
            }
        }
        after 10
    }
    error "sleep $pid did not start sleeping"
}

# The /proc/meminfo line key (MemTotal, ...) in bytes.
proc meminfo {key} {
    set f [open /proc/meminfo]
    set text [read $f]
    close $f
    regexp -line "^$key:\\s+(\\d+) kB" $text -> kb
    return [expr {$kb * 1024}]
}

# |a - b| <= tolerance, or a message saying by how much it is not.
proc near {a b tolerance} {
    if {abs($a - $b) <= $tolerance} {
        return ok
    }
    return "$a and $b differ by [expr {abs($a - $b)}] (tolerance $tolerance)"
}

# MiB with two decimals, as torch::memory_summary prints them.
proc mib {bytes} {
    format "%.2f MiB" [expr {$bytes / 1048576.0}]
}

# Runs script and returns its error message, or "no error: <result>".
proc errorOf {script} {
    if {[catch {uplevel 1 $script} msg]} {
        return $msg
    }
    return "no error: $msg"
}

# Runs script and returns its errorCode, or "no error".
proc errorCodeOf {script} {
    if {[catch {uplevel 1 $script} msg opts]} {
        return [dict get $opts -errorcode]
    }
    return "no error"
}

# Ends the script: tcltest's summary, then exit status 1 when a test failed.
proc finish {} {
    set failed $::tcltest::numTests(Failed)
    cleanupTests
    exit [expr {$failed > 0}]
}
