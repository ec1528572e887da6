// Warm mount readiness, split in two: the mount command (fork, exec, wait) and then `ls MNT` (which waits
// for the mount to answer), medians of REPS (default 21), the variants interleaved; umount after each.
// Used where bench-ready.sh's `date` forks would blur a few milliseconds (docs/BENCHMARKS.md 5.8).
//
//   gcc -O2 -static -o bench-ready scripts/bench-ready.c
//   REPS=31 ./bench-ready MNT "name=command args..." ...   (as root; the mount point is appended)
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <sys/mount.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e3+t.tv_nsec/1e6;}
static void run(char **argv,int quiet){pid_t p=fork();if(!p){if(quiet){freopen("/dev/null","w",stdout);}execvp(argv[0],argv);_exit(127);}int st;waitpid(p,&st,0);if(!WIFEXITED(st)||WEXITSTATUS(st)){fprintf(stderr,"%s failed\n",argv[0]);exit(1);}}
static int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){const char*mnt=argv[1];int reps=atoi(getenv("REPS")?getenv("REPS"):"21");int nv=argc-2;
 double *m=calloc(nv*reps,8),*l=calloc(nv*reps,8),*t=calloc(nv*reps,8);
 for(int r=0;r<reps;r++)for(int v=0;v<nv;v++){char buf[4096];strcpy(buf,strchr(argv[v+2],'=')+1);char*av[64];int n=0;for(char*s=strtok(buf," ");s;s=strtok(0," "))av[n++]=s;av[n++]=(char*)mnt;av[n]=0;
  double t0=now();run(av,0);double t1=now();char*ls[]={"ls",(char*)mnt,0};run(ls,1);double t2=now();
  m[v*reps+r]=t1-t0;l[v*reps+r]=t2-t1;t[v*reps+r]=t2-t0;if(umount(mnt)){perror("umount");return 1;}usleep(20000);}
 printf("| variant | mount cmd (ms) | then ls (ms) | total (ms) | total min-max |\n|---|---|---|---|---|\n");
 for(int v=0;v<nv;v++){qsort(m+v*reps,reps,8,cmp);qsort(l+v*reps,reps,8,cmp);qsort(t+v*reps,reps,8,cmp);
  char name[64];snprintf(name,sizeof name,"%.*s",(int)(strchr(argv[v+2],'=')-argv[v+2]),argv[v+2]);
  printf("| %s | %.2f | %.2f | %.2f | %.2f-%.2f |\n",name,m[v*reps+reps/2],l[v*reps+reps/2],t[v*reps+reps/2],t[v*reps],t[v*reps+reps-1]);}
 return 0;}
